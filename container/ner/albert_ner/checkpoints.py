"""Pretrained ALBERT files: finding them in a directory and loading them into an AlbertEncoder.

Three checkpoint families exist: the TF1 name-based checkpoints of brightmart albert_zh and of Google-format
ALBERT (this module), and Hugging Face transformers ALBERT (``transformers_checkpoints``). Each has one
explicit table, source name -> encoder weight, built from the encoder so that it covers exactly the weights
the encoder has. One walk (:func:`compare_shapes`, then :func:`assign_weights`) checks every shape, and
nothing is assigned unless every weight fits: a half-loaded encoder would train without complaint and
silently underperform.

Mixing the families (a Google-format checkpoint with a brightmart config, or the reverse) is the most common
user error; the message then says so, next to the first variables whose shapes disagree.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import glob
import logging
import os
import re
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from albert_ner.errors import CheckpointError
from albert_ner.modeling.albert import AlbertBlock, AlbertConfig, AlbertEncoder

logger = logging.getLogger(__name__)

_FAMILY_NAMES = {"brightmart": "brightmart albert_zh", "google": "Google-format ALBERT"}
# Variables whose presence identifies each family.
_FAMILY_MARKERS = {
    "brightmart": ("bert/embeddings/word_embeddings_2", "bert/encoder/layer_shared/"),
    "google": ("bert/encoder/embedding_hidden_mapping_in/", "bert/encoder/transformer/"),
}
# TF1 scope inside one block -> AlbertBlock sublayer.
_BRIGHTMART_BLOCK = {
    "attention/self/query": "query",
    "attention/self/key": "key",
    "attention/self/value": "value",
    "attention/output/dense": "attention_output",
    "attention/output/LayerNorm": "attention_layer_norm",
    "intermediate/dense": "intermediate",
    "output/dense": "output_dense",
    "output/LayerNorm": "output_layer_norm",
}
_GOOGLE_BLOCK = {
    "attention_1/self/query": "query",
    "attention_1/self/key": "key",
    "attention_1/self/value": "value",
    "attention_1/output/dense": "attention_output",
    "LayerNorm": "attention_layer_norm",
    "ffn_1/intermediate/dense": "intermediate",
    "ffn_1/intermediate/output/dense": "output_dense",
    "LayerNorm_1": "output_layer_norm",
}
# Optimizer slot variables (LAMB/Adam in the ALBERT code, plus the usual TF1 optimizers and EMA shadows).
_OPTIMIZER_SLOT = re.compile(
    r"/(adam_[mv]|lamb_[mv]|Adam(_\d+)?|Momentum|Adagrad|Adadelta(_\d+)?|RMSProp(_\d+)?|Ftrl(_\d+)?"
    r"|ExponentialMovingAverage)$")
_CHECKPOINT_FILE_SUFFIX = re.compile(r"\.(index|meta|data-\d{5}-of-\d{5})$")
_LISTED = 5


#: The two on-disk layouts :func:`find_pretrained` tells apart.
TF1 = "tf1"
TRANSFORMERS = "transformers"


@dataclasses.dataclass(frozen=True)
class PretrainedFiles:
    """A pretrained download: its config, vocabulary and weights (a TF1 checkpoint prefix or a transformers
    ``model.safetensors`` / ``pytorch_model.bin``)."""

    config_path: str
    vocab_path: str
    weights: str
    layout: str  # TF1 or TRANSFORMERS


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


def _block_weights(prefix: str, block: AlbertBlock, scopes: dict[str, str]) -> dict[str, Target]:
    weights = {}
    for scope, attribute in scopes.items():
        weights.update(layer_weights(prefix + scope, getattr(block, attribute)))
    return weights


def checkpoint_name_table(encoder: AlbertEncoder) -> dict[str, Target]:
    """TF1 variable name -> encoder weight, for the encoder's family; shapes are equal by construction."""
    if not encoder.built:
        encoder.build()
    config = encoder.config
    table = {
        "bert/embeddings/word_embeddings": Target(encoder.word_embeddings.embeddings),
        "bert/embeddings/position_embeddings": Target(encoder.position_embeddings),
        "bert/embeddings/token_type_embeddings": Target(encoder.token_type_embeddings),
        **layer_weights("bert/embeddings/LayerNorm", encoder.embedding_layer_norm),
    }
    if config.family == "brightmart":
        assert encoder.embedding_projection is not None
        table["bert/embeddings/word_embeddings_2"] = Target(encoder.embedding_projection.kernel)
        table.update(_block_weights("bert/encoder/layer_shared/", encoder.groups[0][0], _BRIGHTMART_BLOCK))
        return table
    if config.has_embedding_mapping:
        table.update(layer_weights("bert/encoder/embedding_hidden_mapping_in", encoder.embedding_projection))
    for group_index, group in zip(config.used_groups(), encoder.groups, strict=True):
        for inner_index, block in enumerate(group):
            prefix = f"bert/encoder/transformer/group_{group_index}/inner_group_{inner_index}/"
            table.update(_block_weights(prefix, block, _GOOGLE_BLOCK))
    return table


def _is_skipped(name: str) -> bool:
    """Pretraining heads (cls/*), fine-tuning heads, global_step, the pooler and optimizer slots."""
    return not name.startswith("bert/") or name.startswith("bert/pooler/") or bool(_OPTIMIZER_SLOT.search(name))


def _checkpoint_family(names: list[str], path: str) -> str:
    for family, markers in _FAMILY_MARKERS.items():
        if any(name.startswith(marker) for name in names for marker in markers):
            return family
    if any(name.startswith("bert/encoder/layer_0/") for name in names):
        raise CheckpointError(f"{path}: this is a BERT checkpoint (bert/encoder/layer_0/...), not ALBERT; "
                              "use a brightmart albert_zh or Google-format ALBERT checkpoint")
    raise CheckpointError(f"{path}: not an ALBERT checkpoint: it has none of the variables "
                          f"{', '.join(marker for markers in _FAMILY_MARKERS.values() for marker in markers)}; "
                          f"it has {listing(sorted(names))}")


def listing(items: list[str], limit: int = _LISTED) -> str:
    """The first ``limit`` items and how many more there are: error messages stay readable."""
    shown = "; ".join(items[:limit])
    return shown + (f" (and {len(items) - limit} more)" if len(items) > limit else "")


def _open_checkpoint(checkpoint_path: str) -> tf.train.CheckpointReader:
    try:
        return tf.train.load_checkpoint(checkpoint_path)
    except (tf.errors.OpError, ValueError) as error:
        reason = error.message if isinstance(error, tf.errors.OpError) else str(error)
        raise CheckpointError(f"{checkpoint_path}: cannot read TensorFlow checkpoint: {reason.strip()}") from error


def load_albert_checkpoint(encoder: AlbertEncoder, checkpoint_path: str | os.PathLike[str]) -> LoadReport:
    """Assign every encoder weight from a TF1 ALBERT checkpoint, or raise CheckpointError and assign none.

    ``checkpoint_path`` is the prefix (``.../albert_model.ckpt``); a path to one of its files also works.
    The checkpoint's family must be the encoder config's: build the encoder from the albert_config.json
    shipped with the checkpoint.
    """
    checkpoint_path = _CHECKPOINT_FILE_SUFFIX.sub("", os.fspath(checkpoint_path))
    reader = _open_checkpoint(checkpoint_path)
    shapes = {name: tuple(shape) for name, shape in reader.get_variable_to_shape_map().items()}
    family = _checkpoint_family(list(shapes), checkpoint_path)
    table = checkpoint_name_table(encoder)

    skipped = sorted(name for name in shapes if _is_skipped(name))
    check = compare_shapes(table, shapes, skipped)

    config_family = encoder.config.family
    if family != config_family:
        # The tables differ wholesale; the first shape clash plus the diagnosis is what the user needs.
        clash = f"{listing(check.mismatched, limit=1)}: " if check.mismatched else ""
        raise CheckpointError(
            f"{checkpoint_path}: {clash}the checkpoint is {_FAMILY_NAMES[family]} but the config describes a "
            f"{_FAMILY_NAMES[config_family]} encoder. The config and the checkpoint come from different families "
            "(brightmart albert_zh projects word embeddings to the hidden size before the embedding LayerNorm, "
            "Google-format ALBERT after it): use the albert_config*.json shipped in the same archive as the "
            "checkpoint")
    problems = check.problems("check num_hidden_groups, inner_group_num and embedding_size")
    if problems:
        raise CheckpointError(f"{checkpoint_path}: checkpoint does not fit the ALBERT config: " + ". ".join(problems))

    assign_weights(table, reader.get_tensor)
    logger.info("loaded %d encoder tensors from %s (%s); skipped %d (pretraining heads, pooler, optimizer slots, "
                "global_step)", len(table), checkpoint_path, _FAMILY_NAMES[family], len(skipped))
    return LoadReport(checkpoint_path=checkpoint_path, family=family, loaded=tuple(table), skipped=tuple(skipped))


# In priority order; the first pattern with a match wins.
_CONFIG_PATTERNS = ("albert_config*.json", "bert_config.json", "config.json")
_VOCAB_PATTERNS = ("vocab.txt", "vocab*.txt")
#: transformers weights in the order they are preferred: safetensors needs no torch and cannot run code.
TRANSFORMERS_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


def _pick(files: list[str], patterns: tuple[str, ...], what: str, directory: str) -> str | None:
    for pattern in patterns:
        matches = [path for path in files if fnmatch.fnmatch(os.path.basename(path), pattern)]
        if len(matches) > 1:
            raise CheckpointError(f"{directory}: several {what} files: "
                                  f"{', '.join(os.path.relpath(path, directory) for path in matches)}; keep one")
        if matches:
            return matches[0]
    return None


def find_pretrained(directory: str | os.PathLike[str]) -> PretrainedFiles:
    """Locate the config, vocab.txt and weights of a pretrained ALBERT in ``directory``.

    Files may sit in the directory or in one subfolder of it, since the released zips unpack into one. A TF1
    checkpoint (``*.index``) makes it the TF1 layout; otherwise ``model.safetensors`` or ``pytorch_model.bin``
    with ``config.json`` makes it a transformers download.
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise CheckpointError(f"{directory}: pretrained ALBERT directory does not exist or is not a directory")
    folders = [directory] + sorted(
        os.path.join(directory, name) for name in os.listdir(directory)
        if not name.startswith(".") and os.path.isdir(os.path.join(directory, name)))
    files = [os.path.join(folder, name) for folder in folders for name in sorted(os.listdir(folder))
             if not name.startswith(".") and os.path.isfile(os.path.join(folder, name))]

    config_path = _pick(files, _CONFIG_PATTERNS, "ALBERT config", directory)
    vocab_path = _pick(files, _VOCAB_PATTERNS, "vocabulary", directory)
    index_path = _pick(files, ("*.index",), "checkpoint (*.index)", directory)
    transformers_weights = _pick(files, TRANSFORMERS_WEIGHTS, "transformers weights", directory)
    missing, weights_missing = [], []
    if index_path is None and transformers_weights is not None:
        layout, weights = TRANSFORMERS, transformers_weights
        if config_path is None or os.path.basename(config_path) != "config.json":
            config_path = None
            missing.append("config.json (the transformers config beside " + os.path.basename(weights) + ")")
    else:
        layout = TF1
        if config_path is None:
            missing.append("an ALBERT config (" + " or ".join(_CONFIG_PATTERNS) + ")")
        weights = "" if index_path is None else index_path[: -len(".index")]
        if index_path is None:
            weights_missing.append("a TF checkpoint (<prefix>.index with <prefix>.data-00000-of-00001) or "
                                   "transformers weights (" + " or ".join(TRANSFORMERS_WEIGHTS) + ")")
        elif not glob.glob(glob.escape(weights) + ".data-?????-of-?????"):
            weights_missing.append(f"the data file of checkpoint {os.path.relpath(weights, directory)} "
                                   f"({os.path.basename(weights)}.data-00000-of-00001)")
    if vocab_path is None:
        missing.append("vocab.txt")
    missing += weights_missing
    if missing or config_path is None or vocab_path is None:
        found = [os.path.relpath(path, directory) for path in files]
        raise CheckpointError(f"{directory}: incomplete pretrained ALBERT directory: missing {', '.join(missing)}; "
                              f"found {listing(found) if found else 'no files'}")
    return PretrainedFiles(config_path=config_path, vocab_path=vocab_path, weights=weights, layout=layout)


def read_pretrained_config(files: PretrainedFiles) -> AlbertConfig:
    """The encoder config of a download, read by the rules of its layout (the two differ on "gelu")."""
    if files.layout == TRANSFORMERS:
        from albert_ner.transformers_checkpoints import read_transformers_config

        return read_transformers_config(files.config_path)
    return AlbertConfig.from_json_file(files.config_path)


def load_pretrained(encoder: AlbertEncoder, files: PretrainedFiles) -> LoadReport:
    """Load a download found by :func:`find_pretrained` into an encoder built from its config."""
    if files.layout == TRANSFORMERS:
        from albert_ner.transformers_checkpoints import load_transformers_checkpoint

        return load_transformers_checkpoint(encoder, files.weights)
    return load_albert_checkpoint(encoder, files.weights)
