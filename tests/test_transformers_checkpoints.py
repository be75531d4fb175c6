"""Hugging Face transformers ALBERT checkpoints: parity with transformers' own AlbertModel, and what fails.

The reference is a randomly initialised ``transformers.AlbertModel`` saved by its own ``save_pretrained``
(model.safetensors). transformers 5 no longer writes ``pytorch_model.bin``; the .bin files are written as its
earlier versions did (``torch.save`` of the same state dict), which is what such repositories on the Hub hold.
Sizes are scaled down so that the tests run in seconds, keeping each shape's structure:

* tiny-shaped (voidful/albert_chinese_tiny): 4 layers, 12 heads, one shared block, intermediate 4x hidden,
  embedding narrower than hidden, ``hidden_act`` "gelu" (transformers' erf GELU);
* base-shaped (Google's albert_base_zh): 12 layers, 12 heads, ``relu``, here with 2 hidden groups of 2 inner
  groups each, so every group and inner-group index is exercised;
* ``gelu_new`` (the tanh GELU) with 6 layers in 3 groups;
* embedding size equal to hidden size, where transformers still maps through embedding_hidden_mapping_in
  (Google's TF1 code does not).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
import transformers

from albert_fixtures import vocab_tokens
from albert_ner.errors import CheckpointError
from albert_ner.modeling.albert import AlbertEncoder
from albert_ner.pretrained.checkpoint import TRANSFORMERS, find_pretrained, load_pretrained, read_pretrained_config
from albert_ner.pretrained.transformers_albert import load_transformers_checkpoint, read_transformers_config

CONFIGS = {
    "tiny_gelu": dict(embedding_size=32, hidden_size=96, num_hidden_layers=4, num_attention_heads=12,
                      intermediate_size=384, hidden_act="gelu"),
    "base_relu_2x2_groups": dict(embedding_size=32, hidden_size=96, num_hidden_layers=12, num_attention_heads=12,
                                 intermediate_size=384, hidden_act="relu", num_hidden_groups=2,
                                 inner_group_num=2),
    "equal_sizes_gelu": dict(embedding_size=64, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                             intermediate_size=256, hidden_act="gelu"),
    "gelu_new_3_groups": dict(embedding_size=16, hidden_size=64, num_hidden_layers=6, num_attention_heads=4,
                              intermediate_size=256, hidden_act="gelu_new", num_hidden_groups=3),
}
VOCAB_SIZE = 160
LENGTHS = [24, 17, 6, 1]


def reference_model(name: str, seed: int = 0) -> transformers.AlbertModel:
    """A transformers AlbertModel with every parameter (LayerNorms and biases too) away from its init."""
    torch.manual_seed(seed)
    config = transformers.AlbertConfig(vocab_size=VOCAB_SIZE, max_position_embeddings=64, hidden_dropout_prob=0.0,
                                       attention_probs_dropout_prob=0.0, **CONFIGS[name])
    model = transformers.AlbertModel(config, add_pooling_layer=True).eval()
    with torch.no_grad():
        for parameter_name, parameter in model.named_parameters():
            if parameter_name.endswith("LayerNorm.weight") or parameter_name.endswith("layer_norm.weight"):
                parameter.copy_(1.0 + 0.2 * torch.randn_like(parameter))
            else:
                parameter.copy_(0.1 * torch.randn_like(parameter))
    return model


def save(model: transformers.PreTrainedModel, directory, kind: str) -> None:
    model.save_pretrained(directory)
    if kind == "pytorch_model.bin":
        (directory / "model.safetensors").unlink()
        torch.save(model.state_dict(), directory / "pytorch_model.bin")
    (directory / "vocab.txt").write_text("\n".join(vocab_tokens(VOCAB_SIZE)) + "\n", encoding="utf-8")


def padded_batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    ids = np.zeros((len(LENGTHS), max(LENGTHS)), np.int32)
    mask = np.zeros(ids.shape, bool)
    for row, length in enumerate(LENGTHS):
        ids[row, :length] = rng.integers(1, VOCAB_SIZE, length)
        mask[row, :length] = True
    return ids, mask


def max_difference(model: transformers.AlbertModel, encoder: AlbertEncoder) -> float:
    ids, mask = padded_batch()
    with torch.no_grad():
        expected = model(input_ids=torch.tensor(ids, dtype=torch.long),
                         attention_mask=torch.tensor(mask, dtype=torch.long)).last_hidden_state.numpy()
    found = encoder(ids, mask).numpy()
    return float(np.abs(found - expected)[mask].max())


@pytest.mark.parametrize("kind", ["model.safetensors", "pytorch_model.bin"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_sequence_output_matches_transformers(tmp_path, name, kind):
    model = reference_model(name)
    save(model, tmp_path, kind)
    files = find_pretrained(tmp_path)
    assert files.layout == TRANSFORMERS and files.weights.endswith(kind)
    encoder = AlbertEncoder(read_pretrained_config(files))
    report = load_pretrained(encoder, files)

    assert len(report.loaded) == len(encoder.weights)
    assert "pooler.weight" in report.skipped
    difference = max_difference(model, encoder)
    print(f"parity {name} {kind}: max abs difference {difference:.2e}")
    assert difference < 1e-5


def test_hf_gelu_is_the_erf_form_and_gelu_new_the_tanh_one(tmp_path):
    model = reference_model("tiny_gelu")
    save(model, tmp_path, "model.safetensors")
    assert read_transformers_config(tmp_path / "config.json").hidden_act == "gelu_erf"
    values = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**values, "hidden_act": "gelu_new"}))
    tanh_encoder = AlbertEncoder(read_transformers_config(tmp_path / "config.json"))
    load_transformers_checkpoint(tanh_encoder, tmp_path / "model.safetensors")
    # The same weights through the other GELU drift visibly: the mapping is what makes parity hold.
    assert max_difference(model, tanh_encoder) > 1e-4


def test_pretraining_heads_and_albert_prefix_are_handled(tmp_path):
    torch.manual_seed(0)
    config = transformers.AlbertConfig(vocab_size=VOCAB_SIZE, max_position_embeddings=64, **CONFIGS["tiny_gelu"])
    pretraining = transformers.AlbertForPreTraining(config).eval()
    save(pretraining, tmp_path, "model.safetensors")
    encoder = AlbertEncoder(read_transformers_config(tmp_path / "config.json"))
    report = load_transformers_checkpoint(encoder, tmp_path / "model.safetensors")
    assert any(name.startswith("predictions.") for name in report.skipped)
    assert any(name.startswith("sop_classifier.") for name in report.skipped)
    assert max_difference(pretraining.albert, encoder) < 1e-5


def test_sizes_that_do_not_fit_the_weights_name_the_tensor(tmp_path):
    save(reference_model("tiny_gelu"), tmp_path, "model.safetensors")
    values = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**values, "intermediate_size": 192}))
    encoder = AlbertEncoder(read_transformers_config(tmp_path / "config.json"))
    with pytest.raises(CheckpointError, match=r"encoder\.albert_layer_groups\.0\.albert_layers\.0\.ffn\.weight: "
                                              r"expected \(192, 96\), found \(384, 96\)"):
        load_transformers_checkpoint(encoder, tmp_path / "model.safetensors")
    before = [weight.numpy().copy() for weight in encoder.weights]
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(before, encoder.weights, strict=True))


def test_fewer_groups_in_the_config_than_in_the_weights_fails_naming_the_keys(tmp_path):
    save(reference_model("base_relu_2x2_groups"), tmp_path, "model.safetensors")
    values = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**values, "inner_group_num": 1}))
    encoder = AlbertEncoder(read_transformers_config(tmp_path / "config.json"))
    with pytest.raises(CheckpointError, match="check num_hidden_groups, inner_group_num.*albert_layers.1"):
        load_transformers_checkpoint(encoder, tmp_path / "model.safetensors")


@pytest.mark.parametrize("key, value, message", [
    ("hidden_act", "swish", "hidden_act 'swish'"),
    ("layer_norm_eps", 1e-5, "layer_norm_eps 1e-05"),
    ("model_type", "bert", "model_type 'bert'"),
    ("position_embedding_type", "relative_key", "position_embedding_type 'relative_key'"),
])
def test_configs_the_encoder_cannot_reproduce_fail_naming_the_key(tmp_path, key, value, message):
    save(reference_model("tiny_gelu"), tmp_path, "model.safetensors")
    values = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**values, key: value}))
    with pytest.raises(CheckpointError, match=message):
        read_transformers_config(tmp_path / "config.json")


def test_pytorch_bin_without_torch_says_which_file_to_fetch(tmp_path, monkeypatch):
    save(reference_model("tiny_gelu"), tmp_path, "pytorch_model.bin")
    encoder = AlbertEncoder(read_transformers_config(tmp_path / "config.json"))
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(CheckpointError, match="needs PyTorch.*fetch the repository's model.safetensors"):
        load_transformers_checkpoint(encoder, tmp_path / "pytorch_model.bin")


def test_safetensors_preferred_when_both_are_present(tmp_path):
    model = reference_model("tiny_gelu")
    save(model, tmp_path, "model.safetensors")
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    assert find_pretrained(tmp_path).weights.endswith("model.safetensors")
