"""The peer: Hugging Face ``AlbertForTokenClassification`` (PyTorch) with our encoder's sizes.

It is an ALBERT encoder plus one linear layer per token (no BiLSTM, no CRF), in Google's layout (Hugging
Face has no brightmart variant; the compute differs by one embedding-sized projection). Only torch and
transformers are imported here, so a process that measures the peer holds no TensorFlow and its peak
memory is its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import nullcontext
from typing import Any

import numpy as np

IGNORED_LABEL = -100


def albert_for_token_classification(sizes: Mapping[str, Any], num_labels: int):
    """Random-weight model with the sizes of one of our ``AlbertConfig.to_dict()`` (vocabulary included)."""
    from transformers import AlbertConfig, AlbertForTokenClassification

    # Our "gelu" is the tanh approximation, which Hugging Face calls "gelu_new".
    activation = {"gelu": "gelu_new"}.get(sizes["hidden_act"], sizes["hidden_act"])
    config = AlbertConfig(
        vocab_size=sizes["vocab_size"], embedding_size=sizes["embedding_size"], hidden_size=sizes["hidden_size"],
        num_hidden_layers=sizes["num_hidden_layers"], num_attention_heads=sizes["num_attention_heads"],
        intermediate_size=sizes["intermediate_size"], hidden_act=activation,
        max_position_embeddings=sizes["max_position_embeddings"], type_vocab_size=sizes["type_vocab_size"],
        hidden_dropout_prob=sizes.get("hidden_dropout_prob", 0.0),
        attention_probs_dropout_prob=sizes.get("attention_probs_dropout_prob", 0.0),
        classifier_dropout_prob=0.1, num_labels=num_labels)
    return AlbertForTokenClassification(config)


def model_inputs(token_ids: np.ndarray, tag_ids: np.ndarray, lengths: np.ndarray, *, cls_id: int, sep_id: int,
                 pad_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(input_ids, attention_mask, labels)`` ``[batch, time + 2]``: [CLS] and [SEP] added around each
    sentence as our tagger adds them inside its graph; labels ignored on the specials and the padding."""
    batch, time = token_ids.shape
    positions = np.arange(time + 2)[np.newaxis, :]
    sep_positions = lengths[:, np.newaxis] + 1
    input_ids = np.full((batch, time + 2), pad_id, dtype=np.int64)
    input_ids[:, 1:time + 1] = token_ids
    input_ids[:, 0] = cls_id
    input_ids = np.where(positions == sep_positions, sep_id, np.where(positions > sep_positions, pad_id, input_ids))
    labels = np.full((batch, time + 2), IGNORED_LABEL, dtype=np.int64)
    labels[:, 1:time + 1] = np.where(positions[:, :time] < lengths[:, np.newaxis], tag_ids, IGNORED_LABEL)
    return input_ids, (positions <= sep_positions).astype(np.int64), labels


def make_train_step(model, precision: str, device: str, *, cls_id: int, sep_id: int, pad_id: int,
                    learning_rate: float = 5e-5, weight_decay: float = 0.01,
                    clip_norm: float = 1.0) -> Callable[[np.ndarray, np.ndarray, np.ndarray], float]:
    """One AdamW step (no weight decay on biases and LayerNorm, gradients clipped to ``clip_norm``) on a
    batch of numpy arrays ``(token_ids, tag_ids, lengths)``, as our trainer takes them; returns the loss.

    ``precision``: float32, bfloat16 (autocast) or float16 (autocast with a dynamic gradient scaler).
    """
    import torch

    model.to(device).train()
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        (no_decay if "bias" in name or "LayerNorm" in name else decay).append(parameter)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=learning_rate, eps=1e-6)
    scaler = torch.amp.GradScaler(device, enabled=precision == "float16")
    dtype = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}[precision]

    def train_step(token_ids: np.ndarray, tag_ids: np.ndarray, lengths: np.ndarray) -> float:
        input_ids, attention_mask, labels = (torch.from_numpy(array).to(device) for array in model_inputs(
            token_ids, tag_ids, lengths, cls_id=cls_id, sep_id=sep_id, pad_id=pad_id))
        with torch.autocast(device, dtype=dtype) if dtype is not None else nullcontext():
            loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    return train_step
