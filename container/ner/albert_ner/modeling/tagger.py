"""The NER task model: ALBERT -> dropout -> (+ lexicon features) -> BiLSTM -> dense -> CRF (or softmax).

Inputs are the ids of the sentence's own characters only; ``[CLS]`` and ``[SEP]`` are added inside the
model and the outputs are cut back to one row per character, so callers never shift offsets by one.
A model built with ``lexicon_size`` also takes each character's dictionary features
(:mod:`albert_ner.lexicon`), concatenated to the encoder's output: the BiLSTM's input weights are their
projection, so they cost no layer of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from albert_ner.modeling.albert import AlbertConfig, AlbertEncoder
from albert_ner.modeling.crf import CRF, AllowedTransitions, PathProbabilities


class AlbertTagger(keras.Model):
    """Per-character tag scores for a batch of right-padded sentences.

    ``use_crf=False`` gives the softmax head of the reference TF 1.15 code, kept for comparison.
    ``lstm_units=0`` drops the BiLSTM. ``lexicon_size`` is the length of a character's lexicon feature
    vector (0: no lexicon). The CRF's ``allowed`` masks come from
    :meth:`albert_ner.tag_schemes.LabelMap.allowed_transitions`, so decoding can only emit sequences valid
    in the model's tag scheme.
    """

    def __init__(self, albert_config: AlbertConfig | dict[str, Any], num_tags: int, *,
                 cls_id: int, sep_id: int, pad_id: int, lstm_units: int = 128, dropout: float = 0.1,
                 use_crf: bool = True, lexicon_size: int = 0,
                 allowed: Sequence[np.ndarray | list] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(albert_config, dict):
            albert_config = AlbertConfig(**albert_config)
        if num_tags < 1:
            raise ValueError(f"num_tags must be positive, got {num_tags}")
        self.albert_config = albert_config
        self.num_tags = num_tags
        self.cls_id, self.sep_id, self.pad_id = cls_id, sep_id, pad_id
        self.lstm_units = lstm_units
        self.dropout_rate = dropout
        self.use_crf = use_crf
        self.lexicon_size = lexicon_size
        self.allowed: AllowedTransitions | None = None
        if allowed is not None:
            start, transition, end = (np.asarray(mask, dtype=bool) for mask in allowed)
            self.allowed = (start, transition, end)

        self.encoder = AlbertEncoder(albert_config, name="albert")
        self.dropout = keras.layers.Dropout(dropout)
        self.bilstm = None
        if lstm_units:
            # Under mixed bfloat16 the recurrence stays float32: on CPU its small per-step matmuls gain
            # nothing from bfloat16 but conversions (a whole tiny training step is 8-12% faster this way,
            # bench/README.md), and the carried state would keep 8 bits of mantissa over up to 126 steps.
            lstm_dtype = "float32" if self.compute_dtype == "bfloat16" else None
            self.bilstm = keras.layers.Bidirectional(
                keras.layers.LSTM(lstm_units, return_sequences=True, dtype=lstm_dtype), name="bilstm",
                dtype=lstm_dtype)
        # The scores feed a float32 CRF / softmax: keep the projection float32 under mixed precision.
        self.projection = keras.layers.Dense(num_tags, dtype="float32", name="tag_projection")
        self.crf = CRF(num_tags, allowed=self.allowed, name="crf") if use_crf else None

    def call(self, token_ids: tf.Tensor, lengths: tf.Tensor, lexicon: tf.Tensor | None = None,
             training: bool = False) -> tf.Tensor:
        """Tag scores ``[batch, time, num_tags]`` (float32) for ``token_ids [batch, time]`` and, when the
        model has a lexicon, its features ``[batch, time, lexicon_size]`` (any numeric type; 0 or 1)."""
        lengths = tf.cast(lengths, tf.int32)
        features = self.dropout(self.encode(token_ids, lengths, training=training), training=training)
        if self.lexicon_size:
            if lexicon is None:
                raise ValueError(f"this model needs lexicon features [batch, time, {self.lexicon_size}]")
            features = tf.concat([features, tf.cast(lexicon, features.dtype)], axis=-1)
        if self.bilstm is not None:
            features = self.dropout(self._run_bilstm(features, lengths, training), training=training)
        return self.projection(features)

    def encode(self, token_ids: tf.Tensor, lengths: tf.Tensor, training: bool = False) -> tf.Tensor:
        """The encoder's output at each character, ``[batch, time, hidden]``: each sentence is read between
        [CLS] and [SEP], as ALBERT is pretrained, and those two positions are dropped from the output."""
        return encode_sentences(self.encoder, (self.cls_id, self.sep_id, self.pad_id), token_ids, lengths, training)

    def _run_bilstm(self, features: tf.Tensor, lengths: tf.Tensor, training: bool) -> tf.Tensor:
        """The BiLSTM over right-padded ``features``, without a mask: the same values as
        ``self.bilstm(features, mask=...)`` at every character (bit for bit; padding rows differ, and
        nothing reads them).

        The forward direction never sees the padding before a character. The backward one reads each
        sentence reversed on its own length (``tf.reverse_sequence``), so it starts at the sentence's last
        character. Without the per-step mask, tf2onnx converts each direction to ONNX's ``LSTM`` operator
        instead of a loop of small operators (bench/README.md, Runtimes).
        """
        assert self.bilstm is not None
        if not self.bilstm.built:  # as its own call would: the variables' paths stay under "bilstm/"
            self.bilstm.build(features.shape)
        forward = self.bilstm.forward_layer(features, training=training)
        # The backward layer walks its input from the end (go_backwards) and returns its outputs in that
        # order: give it each sentence reversed on its length, then reversed whole, and undo the first.
        backward_input = tf.reverse(tf.reverse_sequence(features, lengths, seq_axis=1, batch_axis=0), [1])
        backward = tf.reverse_sequence(self.bilstm.backward_layer(backward_input, training=training), lengths,
                                       seq_axis=1, batch_axis=0)
        return tf.concat([forward, backward], axis=-1)

    def per_example_loss(self, scores: tf.Tensor, tag_ids: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
        """Negative log-likelihood of each gold sentence ``[batch]`` (summed over its characters)."""
        lengths = tf.cast(lengths, tf.int32)
        if self.crf is not None:
            return -self.crf.log_likelihood(scores, tag_ids, lengths)
        token_loss = keras.losses.sparse_categorical_crossentropy(tag_ids, scores, from_logits=True)
        mask = tf.sequence_mask(lengths, tf.shape(scores)[1], dtype=token_loss.dtype)
        return tf.reduce_sum(token_loss * mask, axis=1)

    def decode(self, scores: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
        """Best tag ids ``[batch, time]``; padding positions hold 0."""
        lengths = tf.cast(lengths, tf.int32)
        if self.crf is not None:
            tags, _ = self.crf.decode(scores, lengths)
            return tags
        tags = tf.argmax(scores, axis=-1, output_type=tf.int32)
        return tf.where(tf.sequence_mask(lengths, tf.shape(scores)[1]), tags, 0)

    def path_probabilities(self, scores: tf.Tensor, lengths: tf.Tensor, tags: tf.Tensor,
                           continues: np.ndarray | None = None, temperature: float = 1.0) -> PathProbabilities:
        """Log-probabilities along ``tags`` (see :class:`~albert_ner.modeling.crf.PathProbabilities`).

        With the CRF they come from its forward-backward marginals over the allowed paths, exactly. The
        softmax head's tags are independent, so each step's conditional is its own softmax probability
        and nothing closes an entity: an entity's confidence is the product of its tags' probabilities.
        ``temperature`` divides the scores (CRF: the transitions too) before normalising; 1 leaves them.
        """
        lengths = tf.cast(lengths, tf.int32)
        if self.crf is not None:
            return self.crf.path_probabilities(scores, lengths, tags, continues, temperature)
        valid = tf.sequence_mask(lengths, tf.shape(scores)[1])
        log_probabilities = tf.nn.log_softmax(tf.cast(scores, tf.float32) / temperature)
        chosen = tf.gather(log_probabilities, tf.where(valid, tags, 0), batch_dims=2)
        chosen = tf.where(valid, chosen, 0.0)
        return PathProbabilities(marginal=chosen, conditional=chosen, closing=tf.zeros_like(chosen))

    @property
    def head_variables(self) -> list[tf.Variable]:
        """Trainable variables above the encoder, which train at ``head_learning_rate``."""
        encoder_ids = {id(variable) for variable in self.encoder.trainable_variables}
        return [variable for variable in self.trainable_variables if id(variable) not in encoder_ids]

    def get_config(self) -> dict[str, Any]:
        return {
            "albert_config": self.albert_config.to_dict(),
            "num_tags": self.num_tags,
            "cls_id": self.cls_id, "sep_id": self.sep_id, "pad_id": self.pad_id,
            "lstm_units": self.lstm_units, "dropout": self.dropout_rate, "use_crf": self.use_crf,
            "lexicon_size": self.lexicon_size,
            "allowed": None if self.allowed is None else [mask.tolist() for mask in self.allowed],
            "name": self.name,
        }


def build_model(model: AlbertTagger, pad_id: int) -> None:
    """Create the model's variables by running it once on a one-character batch."""
    model(tf.fill([1, 1], pad_id), tf.ones([1], tf.int32), tf.zeros([1, 1, model.lexicon_size], tf.uint8),
          training=False)


def encode_sentences(encoder: AlbertEncoder, specials: tuple[int, int, int], token_ids: tf.Tensor,
                     lengths: tf.Tensor, training: bool = False) -> tf.Tensor:
    """``encoder``'s output at each character of right-padded ``token_ids``, each sentence read between
    [CLS] and [SEP] (``specials``: the ids of [CLS], [SEP] and [PAD]) and those positions dropped."""
    cls_id, sep_id, pad_id = specials
    token_ids = tf.cast(token_ids, tf.int32)
    lengths = tf.cast(lengths, tf.int32)
    batch, time = tf.shape(token_ids)[0], tf.shape(token_ids)[1]
    positions = tf.range(time + 2)[tf.newaxis, :]
    with_specials = tf.concat([tf.fill([batch, 1], cls_id), token_ids, tf.fill([batch, 1], pad_id)], axis=1)
    sep_position = lengths[:, tf.newaxis] + 1
    with_specials = tf.where(positions == sep_position, sep_id, with_specials)
    with_specials = tf.where(positions > sep_position, pad_id, with_specials)
    sequence = encoder(with_specials, positions <= sep_position, training=training)
    return sequence[:, 1:time + 1]
