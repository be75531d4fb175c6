"""The tagger's numeric core on TensorFlow: the Keras model, traced once per batch shape signature.

:func:`tag_with_probabilities` is the one definition of what the core computes; the TensorFlow runtime
runs it, the SavedModel (:mod:`albert_ner.export`) embeds it and the ONNX export converts it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from albert_ner.errors import ModelDirectoryError
from albert_ner.model_directory import CONFIG_FILE, WEIGHTS_FILE, ModelDescription
from albert_ner.modeling.tagger import AlbertTagger, build_model
from albert_ner.runtimes.choice import TENSORFLOW


def tag_with_probabilities(model: AlbertTagger, continuations: np.ndarray, ids: tf.Tensor, lengths: tf.Tensor,
                           lexicon: tf.Tensor, temperature: float | tf.Tensor = 1.0
                           ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Best tags ``[B, T]`` and their (marginal, conditional, closing) log-probabilities ``[B, T]`` each,
    at the calibration ``temperature``; ``continuations`` is the label map's
    :meth:`~albert_ner.tag_schemes.LabelMap.continuations`."""
    scores = model(ids, lengths, lexicon, training=False)
    tags = model.decode(scores, lengths)
    return (tags, *model.path_probabilities(scores, lengths, tags, continuations, temperature))


def core_signature(lexicon_size: int) -> list[tf.TensorSpec]:
    """The core's inputs: ids, lengths, lexicon features and the temperature."""
    return [tf.TensorSpec([None, None], tf.int32, name="ids"), tf.TensorSpec([None], tf.int32, name="lengths"),
            tf.TensorSpec([None, None, lexicon_size], tf.uint8, name="lexicon"),
            tf.TensorSpec([], tf.float32, name="temperature")]


class TensorFlowCore:
    """:class:`~albert_ner.runtimes.choice.TaggingCore` on the Keras tagger (the one training updates)."""

    runtime = TENSORFLOW

    def __init__(self, model: AlbertTagger, continuations: np.ndarray):
        self.model = model
        self.lexicon_size = model.lexicon_size
        signature = core_signature(model.lexicon_size)
        self._tag = tf.function(
            lambda ids, lengths, lexicon: model.decode(model(ids, lengths, lexicon, training=False), lengths),
            input_signature=signature[:3])
        self._tag_with_probabilities = tf.function(
            lambda ids, lengths, lexicon, temperature: tag_with_probabilities(
                model, continuations, ids, lengths, lexicon, temperature),
            input_signature=signature)

    def tag(self, ids: np.ndarray, lengths: np.ndarray, lexicon: np.ndarray) -> np.ndarray:
        return self._tag(ids, lengths, lexicon).numpy()

    def tag_with_probabilities(self, ids: np.ndarray, lengths: np.ndarray, lexicon: np.ndarray,
                               temperature: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        tags, marginal, conditional, closing = (
            values.numpy() for values in self._tag_with_probabilities(ids, lengths, lexicon, np.float32(temperature)))
        return tags, marginal, conditional, closing


def load_tagger(model_dir: Path, description: ModelDescription) -> AlbertTagger:
    """The Keras tagger ``description`` describes, with the weights of ``model.weights.h5``."""
    try:
        model = AlbertTagger(**description.tagger_config)
    except (KeyError, TypeError, ValueError) as error:
        raise ModelDirectoryError(f"{CONFIG_FILE} does not describe a tagger ({type(error).__name__}: {error})"
                                  ) from error
    build_model(model, description.tokenizer.vocab.pad_id)
    if not (model_dir / WEIGHTS_FILE).is_file():
        raise ModelDirectoryError(f"the model directory has no {WEIGHTS_FILE}")
    try:
        model.load_weights(model_dir / WEIGHTS_FILE)
    except Exception as error:  # noqa: BLE001 - h5py, Keras and shape errors alike: the file does not fit
        raise ModelDirectoryError(f"{WEIGHTS_FILE} cannot be loaded into the tagger {CONFIG_FILE} describes "
                                  f"({type(error).__name__})") from error
    return model


def load_tensorflow_core(model_dir: Path, description: ModelDescription) -> TensorFlowCore:
    return TensorFlowCore(load_tagger(model_dir, description), description.label_map.continuations())
