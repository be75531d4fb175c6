"""Pretrained ALBERT files: finding them in a directory, reading their config, and loading them by family.

Three checkpoint families exist, each in its own converter with one explicit name table: the TF1 name-based
checkpoints of brightmart albert_zh (:mod:`~albert_ner.pretrained.brightmart`) and of Google-format ALBERT
(:mod:`~albert_ner.pretrained.google`), and Hugging Face transformers ALBERT
(:mod:`~albert_ner.pretrained.transformers_albert`). This module tells them apart and hands each download to
its converter; the walk they share is :mod:`~albert_ner.pretrained.weights`.

Mixing the TF1 families (a Google-format checkpoint with a brightmart config, or the reverse) is the most
common user error; the message then says so, next to the first variables whose shapes disagree.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import glob
import logging
import os

from albert_ner.errors import CheckpointError
from albert_ner.modeling.albert import AlbertConfig, AlbertEncoder
from albert_ner.pretrained import brightmart, google, transformers_albert
from albert_ner.pretrained.weights import (
    LoadReport,
    assign_weights,
    compare_shapes,
    is_tf1_skipped,
    listing,
    open_tf1_checkpoint,
    tf1_checkpoint_prefix,
)

logger = logging.getLogger(__name__)

#: The TF1 families by their AlbertConfig.family, in the order their markers are looked for.
_TF1_FAMILIES = {family.family: family for family in (brightmart.FAMILY, google.FAMILY)}

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
        return transformers_albert.read_transformers_config(files.config_path)
    return AlbertConfig.from_json_file(files.config_path)


def load_pretrained(encoder: AlbertEncoder, files: PretrainedFiles) -> LoadReport:
    """Load a download found by :func:`find_pretrained` into an encoder built from its config."""
    if files.layout == TRANSFORMERS:
        return transformers_albert.load_transformers_checkpoint(encoder, files.weights)
    return load_albert_checkpoint(encoder, files.weights)


def _checkpoint_family(names: list[str], path: str) -> str:
    for family in _TF1_FAMILIES.values():
        if any(name.startswith(marker) for name in names for marker in family.markers):
            return family.family
    if any(name.startswith("bert/encoder/layer_0/") for name in names):
        raise CheckpointError(f"{path}: this is a BERT checkpoint (bert/encoder/layer_0/...), not ALBERT; "
                              "use a brightmart albert_zh or Google-format ALBERT checkpoint")
    raise CheckpointError(f"{path}: not an ALBERT checkpoint: it has none of the variables "
                          f"{', '.join(marker for family in _TF1_FAMILIES.values() for marker in family.markers)}; "
                          f"it has {listing(sorted(names))}")


def load_albert_checkpoint(encoder: AlbertEncoder, checkpoint_path: str | os.PathLike[str]) -> LoadReport:
    """Assign every encoder weight from a TF1 ALBERT checkpoint, or raise CheckpointError and assign none.

    ``checkpoint_path`` is the prefix (``.../albert_model.ckpt``); a path to one of its files also works.
    The checkpoint's family must be the encoder config's: build the encoder from the albert_config.json
    shipped with the checkpoint.
    """
    checkpoint_path = tf1_checkpoint_prefix(checkpoint_path)
    reader = open_tf1_checkpoint(checkpoint_path)
    shapes = {name: tuple(shape) for name, shape in reader.get_variable_to_shape_map().items()}
    family = _checkpoint_family(list(shapes), checkpoint_path)
    config_family = encoder.config.family
    table = _TF1_FAMILIES[config_family].name_table(encoder)

    skipped = sorted(name for name in shapes if is_tf1_skipped(name))
    check = compare_shapes(table, shapes, skipped)

    if family != config_family:
        # The tables differ wholesale; the first shape clash plus the diagnosis is what the user needs.
        clash = f"{listing(check.mismatched, limit=1)}: " if check.mismatched else ""
        raise CheckpointError(
            f"{checkpoint_path}: {clash}the checkpoint is {_TF1_FAMILIES[family].description} but the config "
            f"describes a {_TF1_FAMILIES[config_family].description} encoder. The config and the checkpoint come "
            "from different families (brightmart albert_zh projects word embeddings to the hidden size before the "
            "embedding LayerNorm, Google-format ALBERT after it): use the albert_config*.json shipped in the same "
            "archive as the checkpoint")
    problems = check.problems("check num_hidden_groups, inner_group_num and embedding_size")
    if problems:
        raise CheckpointError(f"{checkpoint_path}: checkpoint does not fit the ALBERT config: " + ". ".join(problems))

    assign_weights(table, reader.get_tensor)
    logger.info("loaded %d encoder tensors from %s (%s); skipped %d (pretraining heads, pooler, optimizer slots, "
                "global_step)", len(table), checkpoint_path, _TF1_FAMILIES[family].description, len(skipped))
    return LoadReport(checkpoint_path=checkpoint_path, family=family, loaded=tuple(table), skipped=tuple(skipped))
