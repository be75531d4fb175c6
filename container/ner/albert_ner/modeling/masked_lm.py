"""ALBERT's masked-language-model head over the tagger's encoder, for pretraining it on the user's text
(:mod:`albert_ner.pretraining`).

As in ALBERT's (and BERT's) own pretraining, the head is a dense transform to the embedding width with the
encoder's activation and a layer norm, and the vocabulary scores come from the word embeddings themselves
(tied) plus a bias: the head adds little to learn, and what the encoder learns is in the encoder, which
the tagger keeps. The model speaks :class:`~albert_ner.optimization.TrainStep`'s language (``encoder``,
``head_variables``, ``per_example_loss``), so the same step trains it; its "tags" are the masked
characters' ids, -1 where nothing is to be predicted.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from albert_ner.modeling.albert import LAYER_NORM_EPSILON, activation
from albert_ner.modeling.tagger import AlbertTagger, encode_sentences

#: The target of a character that is not to be predicted.
NOT_MASKED = -1


class MaskedLanguageModel(keras.Model):
    """The tagger's encoder (shared: training this trains the tagger's) with the pretraining head."""

    def __init__(self, tagger: AlbertTagger, **kwargs: Any):
        super().__init__(name="masked_lm", **kwargs)
        config = tagger.encoder.config
        self.encoder = tagger.encoder
        self.specials = (tagger.cls_id, tagger.sep_id, tagger.pad_id)
        initializer = keras.initializers.TruncatedNormal(stddev=config.initializer_range)
        self.transform = keras.layers.Dense(config.embedding_size, activation=activation(config),
                                            kernel_initializer=initializer, name="transform")
        self.transform_layer_norm = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON,
                                                                    name="transform_layer_norm")
        self.output_bias = self.add_weight(shape=(config.vocab_size,), initializer="zeros", name="output_bias")
        self.transform.build((None, None, config.hidden_size))
        self.transform_layer_norm.build((None, None, config.embedding_size))

    def call(self, token_ids: tf.Tensor, lengths: tf.Tensor, lexicon: tf.Tensor | None = None,
             training: bool = False) -> tf.Tensor:
        """The transformed encoder output at each character ``[batch, time, embedding_size]``; the
        vocabulary scores are made in :meth:`per_example_loss`, at the masked characters only."""
        sequence = encode_sentences(self.encoder, self.specials, token_ids, lengths, training=training)
        return self.transform_layer_norm(self.transform(sequence))

    def per_example_loss(self, hidden: tf.Tensor, targets: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
        """Cross-entropy of the masked characters, summed per sentence ``[batch]``."""
        targets = tf.cast(targets, tf.int32)
        positions = tf.where(targets != NOT_MASKED)
        picked = tf.cast(tf.gather_nd(hidden, positions), tf.float32)
        embeddings = tf.cast(self.encoder.word_embeddings.embeddings, tf.float32)
        logits = tf.matmul(picked, embeddings, transpose_b=True) + self.output_bias
        losses = keras.losses.sparse_categorical_crossentropy(tf.gather_nd(targets, positions), logits,
                                                              from_logits=True)
        return tf.math.unsorted_segment_sum(losses, positions[:, 0], num_segments=tf.shape(targets)[0])

    @property
    def head_variables(self) -> list[tf.Variable]:
        encoder_ids = {id(variable) for variable in self.encoder.trainable_variables}
        return [variable for variable in self.trainable_variables if id(variable) not in encoder_ids]
