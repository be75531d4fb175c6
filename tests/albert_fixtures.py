"""Stand-ins for pretrained Chinese ALBERT downloads, for tests.

Checkpoints are written the way the released ones are: TF1 name-based checkpoints (``SaveV2`` writes the
exact variable names) with the real names and shapes of each family, spelled out here independently of the
package's name tables, so that a wrong table fails the tests. ``with_training_leftovers`` adds what real
checkpoints also carry and the loader must ignore: pretraining heads, the pooler, global_step and LAMB/Adam
slots. ``write_pretrained_directory`` lays out a whole download (config JSON, vocab.txt, checkpoint) for
end-to-end tests.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import tensorflow as tf

SPECIAL_VOCAB = ["[PAD]"] + [f"[unused{index}]" for index in range(1, 100)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def config_json(family: str, **sizes: Any) -> dict[str, Any]:
    """albert_config.json contents as each family ships them (tiny sizes unless overridden).

    brightmart's files carry ``ln_type`` and pooler keys; Google's carry ``num_hidden_groups`` and the
    knobs of architectures it never released.
    """
    values: dict[str, Any] = {
        "attention_probs_dropout_prob": 0.0, "hidden_act": "gelu", "hidden_dropout_prob": 0.0,
        "embedding_size": 16, "hidden_size": 32, "initializer_range": 0.2, "intermediate_size": 64,
        "max_position_embeddings": 32, "num_attention_heads": 4, "num_hidden_layers": 2, "type_vocab_size": 2,
        "vocab_size": 120,
    }
    if family == "brightmart":
        values.update({"directionality": "bidi", "pooler_fc_size": 768, "pooler_num_attention_heads": 12,
                       "pooler_num_fc_layers": 3, "pooler_size_per_head": 128,
                       "pooler_type": "first_token_transform", "ln_type": "postln"})
    elif family == "google":
        values.update({"num_hidden_groups": 1, "net_structure_type": 0, "gap_size": 0, "num_memory_blocks": 0,
                       "inner_group_num": 1, "down_scale_factor": 1})
    else:
        raise ValueError(f"unknown family {family!r}")
    values.update(sizes)
    return values


def _brightmart_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    vocab, embedding, hidden, inner = (config["vocab_size"], config["embedding_size"], config["hidden_size"],
                                       config["intermediate_size"])
    shapes = {
        "bert/embeddings/word_embeddings": (vocab, embedding),
        "bert/embeddings/word_embeddings_2": (embedding, hidden),
        "bert/embeddings/token_type_embeddings": (config["type_vocab_size"], hidden),
        "bert/embeddings/position_embeddings": (config["max_position_embeddings"], hidden),
        "bert/embeddings/LayerNorm/beta": (hidden,),
        "bert/embeddings/LayerNorm/gamma": (hidden,),
    }
    block = "bert/encoder/layer_shared/"
    for projection in ("query", "key", "value"):
        shapes[f"{block}attention/self/{projection}/kernel"] = (hidden, hidden)
        shapes[f"{block}attention/self/{projection}/bias"] = (hidden,)
    shapes.update({
        f"{block}attention/output/dense/kernel": (hidden, hidden),
        f"{block}attention/output/dense/bias": (hidden,),
        f"{block}attention/output/LayerNorm/beta": (hidden,),
        f"{block}attention/output/LayerNorm/gamma": (hidden,),
        f"{block}intermediate/dense/kernel": (hidden, inner),
        f"{block}intermediate/dense/bias": (inner,),
        f"{block}output/dense/kernel": (inner, hidden),
        f"{block}output/dense/bias": (hidden,),
        f"{block}output/LayerNorm/beta": (hidden,),
        f"{block}output/LayerNorm/gamma": (hidden,),
    })
    return shapes


def google_groups(config: dict[str, Any]) -> list[int]:
    """Groups some layer runs, by the expression in google-research/albert modeling.transformer_model."""
    layers, groups = config["num_hidden_layers"], config.get("num_hidden_groups", 1)
    return sorted({int(index / layers * groups) for index in range(layers)})


def _google_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    vocab, embedding, hidden, inner = (config["vocab_size"], config["embedding_size"], config["hidden_size"],
                                       config["intermediate_size"])
    shapes = {
        "bert/embeddings/word_embeddings": (vocab, embedding),
        "bert/embeddings/token_type_embeddings": (config["type_vocab_size"], embedding),
        "bert/embeddings/position_embeddings": (config["max_position_embeddings"], embedding),
        "bert/embeddings/LayerNorm/beta": (embedding,),
        "bert/embeddings/LayerNorm/gamma": (embedding,),
    }
    if embedding != hidden:
        shapes["bert/encoder/embedding_hidden_mapping_in/kernel"] = (embedding, hidden)
        shapes["bert/encoder/embedding_hidden_mapping_in/bias"] = (hidden,)
    for group in google_groups(config):
        for inner_group in range(config.get("inner_group_num", 1)):
            block = f"bert/encoder/transformer/group_{group}/inner_group_{inner_group}/"
            for projection in ("query", "key", "value"):
                shapes[f"{block}attention_1/self/{projection}/kernel"] = (hidden, hidden)
                shapes[f"{block}attention_1/self/{projection}/bias"] = (hidden,)
            shapes.update({
                f"{block}attention_1/output/dense/kernel": (hidden, hidden),
                f"{block}attention_1/output/dense/bias": (hidden,),
                f"{block}LayerNorm/beta": (hidden,),
                f"{block}LayerNorm/gamma": (hidden,),
                f"{block}ffn_1/intermediate/dense/kernel": (hidden, inner),
                f"{block}ffn_1/intermediate/dense/bias": (inner,),
                f"{block}ffn_1/intermediate/output/dense/kernel": (inner, hidden),
                f"{block}ffn_1/intermediate/output/dense/bias": (hidden,),
                f"{block}LayerNorm_1/beta": (hidden,),
                f"{block}LayerNorm_1/gamma": (hidden,),
            })
    return shapes


def encoder_tensors(family: str, config: dict[str, Any], seed: int = 0) -> dict[str, np.ndarray]:
    """Random encoder weights under the family's TF1 names, scaled by ``initializer_range``.

    LayerNorm gammas and betas and all biases are non-trivial, so a weight loaded into the wrong place
    changes the output.
    """
    shapes = _brightmart_shapes(config) if family == "brightmart" else _google_shapes(config)
    rng = np.random.default_rng(seed)
    scale = config["initializer_range"]
    tensors = {}
    for name, shape in shapes.items():
        if name.endswith("/gamma"):
            value = 1.0 + 0.2 * rng.standard_normal(shape)
        elif name.endswith("/beta") or name.endswith("/bias"):
            value = 0.2 * rng.standard_normal(shape)
        else:
            value = scale * rng.standard_normal(shape)
        tensors[name] = value.astype(np.float32)
    return tensors


def with_training_leftovers(tensors: dict[str, np.ndarray], config: dict[str, Any]) -> dict[str, np.ndarray]:
    """Add what a released checkpoint carries besides the encoder: the loader must skip all of it."""
    hidden, embedding = config["hidden_size"], config["embedding_size"]
    rng = np.random.default_rng(1)
    extra = {
        "bert/pooler/dense/kernel": rng.standard_normal((hidden, hidden)),
        "bert/pooler/dense/bias": rng.standard_normal((hidden,)),
        "cls/predictions/transform/dense/kernel": rng.standard_normal((hidden, embedding)),
        "cls/predictions/transform/dense/bias": rng.standard_normal((embedding,)),
        "cls/predictions/transform/LayerNorm/beta": rng.standard_normal((embedding,)),
        "cls/predictions/transform/LayerNorm/gamma": rng.standard_normal((embedding,)),
        "cls/predictions/output_bias": rng.standard_normal((config["vocab_size"],)),
        "cls/seq_relationship/output_weights": rng.standard_normal((2, hidden)),
        "cls/seq_relationship/output_bias": rng.standard_normal((2,)),
    }
    for name in list(tensors)[:3]:
        extra[f"{name}/adam_m"] = rng.standard_normal(tensors[name].shape)
        extra[f"{name}/adam_v"] = rng.standard_normal(tensors[name].shape)
    result = dict(tensors)
    result.update({name: value.astype(np.float32) for name, value in extra.items()})
    result["global_step"] = np.array(125000, dtype=np.int64)
    return result


def write_tf1_checkpoint(prefix: str | os.PathLike[str], tensors: dict[str, np.ndarray]) -> str:
    """Write a name-based checkpoint (``prefix.index`` + ``prefix.data-00000-of-00001``); returns prefix."""
    prefix = os.fspath(prefix)
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(tensors[name]) for name in names])
    return prefix


def vocab_tokens(size: int) -> list[str]:
    """An albert_zh-style vocabulary: [PAD], [unused*], [UNK]=100 ... [MASK]=103, then CJK characters."""
    if size < len(SPECIAL_VOCAB):
        raise ValueError(f"vocab size {size} leaves no room for the {len(SPECIAL_VOCAB)} special tokens")
    return SPECIAL_VOCAB + [chr(0x4E00 + index) for index in range(size - len(SPECIAL_VOCAB))]


def write_pretrained_directory(directory: str | os.PathLike[str], family: str = "brightmart", seed: int = 0,
                               **sizes: Any) -> dict[str, Any]:
    """Lay out a pretrained download in ``directory``: config JSON, vocab.txt, checkpoint with leftovers.

    File names are the released ones (``albert_config_tiny.json`` / ``albert_config.json``,
    ``albert_model.ckpt.*``). Returns the config JSON written.
    """
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    config = config_json(family, **sizes)
    config_name = "albert_config_tiny.json" if family == "brightmart" else "albert_config.json"
    with open(os.path.join(directory, config_name), "w", encoding="utf-8") as handle:
        json.dump(config, handle, indent=2)
    with open(os.path.join(directory, "vocab.txt"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(vocab_tokens(config["vocab_size"])) + "\n")
    tensors = with_training_leftovers(encoder_tensors(family, config, seed), config)
    write_tf1_checkpoint(os.path.join(directory, "albert_model.ckpt"), tensors)
    return config
