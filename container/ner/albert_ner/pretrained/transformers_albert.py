"""Hugging Face transformers ALBERT checkpoints (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``).

This is the layout most Chinese ALBERTs are published in on the Hugging Face Hub (voidful, clue, uer,
ckiplab). transformers' ``AlbertModel`` is the Google-format architecture, so it loads into the same encoder
(``family="google"``) by one name table, walked by the loop in :mod:`albert_ner.pretrained.weights`. Two
things differ from the TF1 families and are taken care of here:

* PyTorch ``Linear`` weights are stored [out, in]; they are transposed into Keras kernels.
* In transformers configs ``"gelu"`` is the exact erf GELU and ``"gelu_new"`` the tanh approximation, while
  the TF1 codebases' ``"gelu"`` is the tanh one. :data:`HIDDEN_ACTIVATIONS` maps the names onto the
  encoder's, so the numbers are the ones transformers computes for the same config.

safetensors files are read with the ``safetensors`` package (no torch). A ``pytorch_model.bin`` is a pickle
that only torch reads; it loads when torch is importable (with ``weights_only=True``), and otherwise fails
saying to fetch the safetensors file instead.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from albert_ner.errors import CheckpointError
from albert_ner.modeling.albert import LAYER_NORM_EPSILON, AlbertConfig, AlbertEncoder, read_config_json
from albert_ner.pretrained.weights import LoadReport, Target, assign_weights, compare_shapes, layer_weights, listing

logger = logging.getLogger(__name__)

FAMILY_NAME = "Hugging Face transformers ALBERT"
#: transformers ``hidden_act`` -> the encoder's activation of the same numbers.
HIDDEN_ACTIVATIONS = {
    "gelu": "gelu_erf",
    "gelu_python": "gelu_erf",
    "gelu_new": "gelu_new",
    "gelu_pytorch_tanh": "gelu_new",
    "relu": "relu",
    "tanh": "tanh",
}
# transformers module path inside one AlbertLayer -> AlbertBlock sublayer.
_LAYER = {
    "attention.query": "query",
    "attention.key": "key",
    "attention.value": "value",
    "attention.dense": "attention_output",
    "attention.LayerNorm": "attention_layer_norm",
    "ffn": "intermediate",
    "ffn_output": "output_dense",
    "full_layer_layer_norm": "output_layer_norm",
}
# Heads of the task and pretraining models (AlbertForMaskedLM, AlbertForPreTraining, AlbertFor*Classification,
# AlbertForQuestionAnswering), the pooler, and buffers older versions saved.
_SKIPPED = re.compile(r"^(pooler\.|predictions\.|sop_classifier\.|classifier\.|qa_outputs\.|"
                      r"embeddings\.position_ids$|embeddings\.token_type_ids$)")
_GROUP = re.compile(r"^encoder\.albert_layer_groups\.(\d+)\.")
_PREFIX = "albert."


def read_transformers_config(path: str | os.PathLike[str]) -> AlbertConfig:
    """The encoder config of a transformers ``config.json``; a key whose value the encoder cannot reproduce
    fails naming the key."""
    values = read_config_json(path)
    try:
        return albert_config_from_transformers(values)
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from error


def albert_config_from_transformers(values: dict[str, Any]) -> AlbertConfig:
    model_type = values.get("model_type", "albert")
    if model_type != "albert":
        raise CheckpointError(f"model_type {model_type!r}: not an ALBERT model (expected \"albert\")")
    problems = []
    activation = values.get("hidden_act", "gelu_new")
    if activation not in HIDDEN_ACTIVATIONS:
        problems.append(f"hidden_act {activation!r} is not one of {sorted(HIDDEN_ACTIVATIONS)}")
    epsilon = values.get("layer_norm_eps", LAYER_NORM_EPSILON)
    if not isinstance(epsilon, (int, float)) or not np.isclose(epsilon, LAYER_NORM_EPSILON, rtol=1e-3, atol=0):
        problems.append(f"layer_norm_eps {epsilon!r} (the encoder uses {LAYER_NORM_EPSILON}, as every released "
                        "ALBERT does)")
    position_type = values.get("position_embedding_type", "absolute")
    if position_type != "absolute":
        problems.append(f"position_embedding_type {position_type!r} (only \"absolute\" is supported)")
    if problems:
        raise CheckpointError("transformers ALBERT config the encoder cannot reproduce: " + "; ".join(problems))
    # The defaults are transformers' AlbertConfig defaults, for keys a config.json may leave out.
    merged = {"embedding_size": 128, "num_hidden_groups": 1, "inner_group_num": 1, "hidden_act": "gelu_new",
              "max_position_embeddings": 512, "type_vocab_size": 2, "initializer_range": 0.02, **values}
    # transformers maps embeddings through embedding_hidden_mapping_in even when the two sizes are equal.
    config = AlbertConfig.from_dict({**merged, "family": "google", "hidden_act": HIDDEN_ACTIVATIONS[activation],
                                     "ln_type": None, "embedding_mapping": True})
    layers, groups = config.num_hidden_layers, config.num_hidden_groups
    # transformers picks a layer's group as int(i / (L / G)); Google's code (and the encoder) as int(i / L * G).
    differing = [index for index in range(layers) if int(index / (layers / groups)) != config.group_of_layer(index)]
    if differing:
        raise CheckpointError(f"num_hidden_groups {groups} with num_hidden_layers {layers}: transformers assigns "
                              f"layers {differing} to other groups than the encoder does")
    return config


def transformers_name_table(encoder: AlbertEncoder) -> dict[str, Target]:
    """transformers parameter name (without the ``albert.`` prefix) -> encoder weight."""
    if not encoder.built:
        encoder.build()
    config = encoder.config
    if not config.has_embedding_mapping or encoder.embedding_projection is None:
        raise CheckpointError("a transformers ALBERT needs an encoder built with embedding_mapping=True (as "
                              "read_transformers_config builds it)")
    table = {
        "embeddings.word_embeddings.weight": Target(encoder.word_embeddings.embeddings),
        "embeddings.position_embeddings.weight": Target(encoder.position_embeddings),
        "embeddings.token_type_embeddings.weight": Target(encoder.token_type_embeddings),
        **_torch_layer("embeddings.LayerNorm", encoder.embedding_layer_norm),
        **_torch_layer("encoder.embedding_hidden_mapping_in", encoder.embedding_projection),
    }
    for group_index, group in zip(config.used_groups(), encoder.groups, strict=True):
        for inner_index, block in enumerate(group):
            prefix = f"encoder.albert_layer_groups.{group_index}.albert_layers.{inner_index}."
            for module, attribute in _LAYER.items():
                table.update(_torch_layer(prefix + module, getattr(block, attribute)))
    return table


def _torch_layer(module: str, layer: Any) -> dict[str, Target]:
    """PyTorch names of one Keras layer's weights: ``weight``/``bias``, kernels transposed."""
    keras_names = layer_weights("", layer)
    renamed = {"/gamma": "weight", "/beta": "bias", "/kernel": "weight", "/bias": "bias"}
    return {f"{module}.{renamed[name]}": Target(target.variable, transposed=name == "/kernel")
            for name, target in keras_names.items()}


def _open_weights(path: str) -> tuple[dict[str, tuple[int, ...]], Callable[[str], np.ndarray]]:
    """Shapes of every tensor in the file, and a reader of one tensor as float32 numpy."""
    if path.endswith(".safetensors"):
        from safetensors import SafetensorError, safe_open

        try:
            handle = safe_open(path, framework="np")
            shapes = {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}
        except (SafetensorError, OSError) as error:
            raise CheckpointError(f"{path}: cannot read safetensors file: {error}") from error

        def read(name: str) -> np.ndarray:
            try:
                return np.asarray(handle.get_tensor(name), dtype=np.float32)
            except (SafetensorError, TypeError) as error:
                raise CheckpointError(f"{path}: tensor {name}: {error} (bfloat16 files need converting to "
                                      "float32 or float16 first)") from error

        return shapes, read
    try:
        import torch
    except ImportError:
        raise CheckpointError(f"{path}: a pytorch_model.bin needs PyTorch, which is not installed here; fetch "
                              "the repository's model.safetensors instead (or convert the file to safetensors "
                              "with transformers' save_pretrained)") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many types for a bad pickle
        raise CheckpointError(f"{path}: cannot read PyTorch weights: {type(error).__name__}: {error}") from error
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict of tensors, found {type(state).__name__}")
    tensors = {name: value for name, value in state.items() if isinstance(value, torch.Tensor)}
    return ({name: tuple(value.shape) for name, value in tensors.items()},
            lambda name: tensors[name].to(torch.float32).numpy())


def load_transformers_checkpoint(encoder: AlbertEncoder, path: str | os.PathLike[str]) -> LoadReport:
    """Assign every encoder weight from a transformers ALBERT weights file, or raise and assign none.

    Keys may carry the ``albert.`` prefix (AlbertForMaskedLM, AlbertForPreTraining) or not (AlbertModel).
    """
    path = os.fspath(path)
    raw_shapes, read_raw = _open_weights(path)
    original = {name.removeprefix(_PREFIX): name for name in raw_shapes}
    shapes = {name: raw_shapes[source] for name, source in original.items()}
    if not any(name.startswith("encoder.albert_layer_groups.") for name in shapes):
        raise CheckpointError(f"{path}: not a transformers ALBERT checkpoint: no encoder.albert_layer_groups.* "
                              f"tensors; it has {listing(sorted(shapes))}")
    used = set(encoder.config.used_groups())
    skipped = sorted(name for name in shapes if _SKIPPED.match(name)
                     or ((group := _GROUP.match(name)) is not None and int(group.group(1)) not in used
                         and int(group.group(1)) < encoder.config.num_hidden_groups))
    table = transformers_name_table(encoder)
    problems = compare_shapes(table, shapes, skipped).problems(
        "check num_hidden_groups, inner_group_num and num_hidden_layers in config.json")
    if problems:
        raise CheckpointError(f"{path}: weights do not fit config.json: " + ". ".join(problems))
    assign_weights(table, lambda name: read_raw(original[name]))
    logger.info("loaded %d encoder tensors from %s (%s); skipped %d (%s)", len(table), path, FAMILY_NAME,
                len(skipped), listing(skipped) if skipped else "none")
    return LoadReport(checkpoint_path=path, family="transformers", loaded=tuple(table), skipped=tuple(skipped))
