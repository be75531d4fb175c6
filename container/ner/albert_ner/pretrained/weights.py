"""The machinery every checkpoint family shares: a name table, one walk over it, and what the walk reports.

A family's converter builds one table, source name -> :class:`Target`, from the encoder, so that it covers
exactly the weights the encoder has. :func:`compare_shapes` checks every entry against the checkpoint, and
:func:`assign_weights` runs only once nothing is wrong: a half-loaded encoder would train without complaint
and silently underperform. The TF1 names and the TF1 reading below are shared by the two TF1 families
(:mod:`~albert_ner.pretrained.brightmart` and :mod:`~albert_ner.pretrained.google`).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from albert_ner.errors import CheckpointError
from albert_ner.modeling.albert import AlbertBlock, AlbertEncoder

# Optimizer slot variables (LAMB/Adam in the ALBERT code, plus the usual TF1 optimizers and EMA shadows).
_OPTIMIZER_SLOT = re.compile(
    r"/(adam_[mv]|lamb_[mv]|Adam(_\d+)?|Momentum|Adagrad|Adadelta(_\d+)?|RMSProp(_\d+)?|Ftrl(_\d+)?"
    r"|ExponentialMovingAverage)$")
_CHECKPOINT_FILE_SUFFIX = re.compile(r"\.(index|meta|data-\d{5}-of-\d{5})$")
_LISTED = 5


@dataclasses.dataclass(frozen=True)
class LoadReport:
    """What a loader did: every encoder weight was loaded; ``skipped`` were not needed."""

    checkpoint_path: str
    family: str
    loaded: tuple[str, ...]
    skipped: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Target:
    """Where one checkpoint tensor goes; ``transposed`` when the source stores it [out, in] (PyTorch Linear)."""

    variable: keras.Variable
    transposed: bool = False

    @property
    def source_shape(self) -> tuple[int, ...]:
        shape = tuple(self.variable.shape)
        return shape[::-1] if self.transposed else shape


@dataclasses.dataclass(frozen=True)
class ShapeCheck:
    """How a checkpoint's tensors compare with a name table: empty lists mean every weight fits."""

    mismatched: list[str]
    missing: list[str]
    unexpected: list[str]

    def problems(self, unexpected_hint: str) -> list[str]:
        problems = []
        if self.mismatched:
            problems.append(f"shape mismatch: {listing(self.mismatched)}")
        if self.missing:
            problems.append(f"missing encoder variables: {listing(self.missing)}")
        if self.unexpected:
            problems.append(f"encoder variables the config has no place for ({unexpected_hint}): "
                            f"{listing(self.unexpected)}")
        return problems


def compare_shapes(table: dict[str, Target], shapes: dict[str, tuple[int, ...]], skipped: list[str]) -> ShapeCheck:
    """Check every table entry against the checkpoint's shapes; names neither in the table nor skipped are
    unexpected (the config says less than the checkpoint holds)."""
    mismatched, missing = [], []
    for name, target in table.items():
        expected = target.source_shape
        if name not in shapes:
            missing.append(f"{name} (expected shape {expected})")
        elif shapes[name] != expected:
            mismatched.append(f"{name}: expected {expected}, found {shapes[name]}")
    unexpected = sorted(set(shapes) - set(table) - set(skipped))
    return ShapeCheck(mismatched, missing, unexpected)


def assign_weights(table: dict[str, Target], read: Callable[[str], np.ndarray]) -> None:
    """Assign every table entry from ``read(name)``; call only once :func:`compare_shapes` found no problem."""
    for name, target in table.items():
        value = np.asarray(read(name), dtype=target.variable.dtype)
        target.variable.assign(value.T if target.transposed else value)


def layer_weights(scope: str, layer: keras.layers.Layer) -> dict[str, Target]:
    """TF1 names of a Dense or LayerNormalization layer's weights under ``scope``."""
    if isinstance(layer, keras.layers.LayerNormalization):
        return {f"{scope}/gamma": Target(layer.gamma), f"{scope}/beta": Target(layer.beta)}
    weights = {f"{scope}/kernel": Target(layer.kernel)}
    if layer.use_bias:
        weights[f"{scope}/bias"] = Target(layer.bias)
    return weights


def listing(items: list[str], limit: int = _LISTED) -> str:
    """The first ``limit`` items and how many more there are: error messages stay readable."""
    shown = "; ".join(items[:limit])
    return shown + (f" (and {len(items) - limit} more)" if len(items) > limit else "")


@dataclasses.dataclass(frozen=True)
class TF1Family:
    """One family of TF1 checkpoints, as its converter module declares it."""

    family: str  # the AlbertConfig.family whose encoder it loads into
    description: str  # its name in messages
    markers: tuple[str, ...]  # variable name prefixes whose presence identifies it
    name_table: Callable[[AlbertEncoder], dict[str, Target]]


def tf1_embedding_weights(encoder: AlbertEncoder) -> dict[str, Target]:
    """The BERT embedding variables both TF1 families keep under ``bert/embeddings/``."""
    return {
        "bert/embeddings/word_embeddings": Target(encoder.word_embeddings.embeddings),
        "bert/embeddings/position_embeddings": Target(encoder.position_embeddings),
        "bert/embeddings/token_type_embeddings": Target(encoder.token_type_embeddings),
        **layer_weights("bert/embeddings/LayerNorm", encoder.embedding_layer_norm),
    }


def tf1_block_weights(prefix: str, block: AlbertBlock, scopes: dict[str, str]) -> dict[str, Target]:
    """TF1 names of one block's weights, given its family's scopes (TF1 scope -> AlbertBlock sublayer)."""
    weights = {}
    for scope, attribute in scopes.items():
        weights.update(layer_weights(prefix + scope, getattr(block, attribute)))
    return weights


def tf1_checkpoint_prefix(path: str | os.PathLike[str]) -> str:
    """A checkpoint's prefix (``.../albert_model.ckpt``) from itself or from a path to one of its files."""
    return _CHECKPOINT_FILE_SUFFIX.sub("", os.fspath(path))


def open_tf1_checkpoint(checkpoint_path: str) -> tf.train.CheckpointReader:
    """A reader of the checkpoint at ``checkpoint_path`` (a prefix), or CheckpointError saying why not."""
    try:
        return tf.train.load_checkpoint(checkpoint_path)
    except (tf.errors.OpError, ValueError) as error:
        reason = error.message if isinstance(error, tf.errors.OpError) else str(error)
        raise CheckpointError(f"{checkpoint_path}: cannot read TensorFlow checkpoint: {reason.strip()}") from error


def is_tf1_skipped(name: str) -> bool:
    """Pretraining heads (cls/*), fine-tuning heads, global_step, the pooler and optimizer slots."""
    return not name.startswith("bert/") or name.startswith("bert/pooler/") or bool(_OPTIMIZER_SLOT.search(name))
