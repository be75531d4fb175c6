"""Finding pretrained ALBERT files and loading TF1 checkpoints: what loads, what is skipped, what fails."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest

from albert_fixtures import (
    config_json,
    encoder_tensors,
    with_training_leftovers,
    write_pretrained_directory,
    write_tf1_checkpoint,
)
from albert_ner.errors import CheckpointError
from albert_ner.modeling.albert import ALBERT_TINY, AlbertConfig, AlbertEncoder
from albert_ner.pretrained.checkpoint import find_pretrained, load_albert_checkpoint


def _encoder(family: str, **sizes) -> AlbertEncoder:
    return AlbertEncoder(AlbertConfig.from_dict(config_json(family, **sizes)))


def _checkpoint(tmp_path, family: str, tensors=None, **sizes) -> str:
    values = config_json(family, **sizes)
    if tensors is None:
        tensors = with_training_leftovers(encoder_tensors(family, values), values)
    return write_tf1_checkpoint(tmp_path / f"{family}.ckpt", tensors)


@pytest.mark.parametrize("family, sizes", [
    ("brightmart", {}),
    ("google", {"num_hidden_layers": 4, "num_hidden_groups": 2, "inner_group_num": 2}),
])
def test_loads_every_encoder_weight_and_skips_the_rest(tmp_path, caplog, family, sizes):
    values = config_json(family, **sizes)
    tensors = encoder_tensors(family, values)
    prefix = write_tf1_checkpoint(tmp_path / "albert_model.ckpt", with_training_leftovers(tensors, values))
    encoder = AlbertEncoder(AlbertConfig.from_dict(values))
    with caplog.at_level(logging.INFO, logger="albert_ner.pretrained.checkpoint"):
        report = load_albert_checkpoint(encoder, prefix)

    assert report.family == family
    assert sorted(report.loaded) == sorted(tensors)
    assert len(report.loaded) == len(encoder.weights)
    assert "global_step" in report.skipped and "bert/pooler/dense/kernel" in report.skipped
    assert "cls/predictions/output_bias" in report.skipped
    assert "bert/embeddings/word_embeddings/adam_m" in report.skipped
    # Every encoder weight now holds a checkpoint tensor (each tensor is distinct random data).
    loaded_values = sorted(weight.numpy().tobytes() for weight in encoder.weights)
    assert loaded_values == sorted(tensor.tobytes() for tensor in tensors.values())
    assert f"loaded {len(tensors)} encoder tensors" in caplog.text
    assert f"skipped {len(report.skipped)}" in caplog.text


def test_checkpoint_file_path_is_accepted_for_its_prefix(tmp_path):
    prefix = _checkpoint(tmp_path, "brightmart")
    report = load_albert_checkpoint(_encoder("brightmart"), prefix + ".index")
    assert report.checkpoint_path == prefix


def test_google_checkpoint_with_brightmart_config_explains_the_family_mix(tmp_path):
    prefix = _checkpoint(tmp_path, "google", embedding_size=16, hidden_size=32)
    with pytest.raises(CheckpointError) as error:
        load_albert_checkpoint(_encoder("brightmart", embedding_size=16, hidden_size=32), prefix)
    message = str(error.value)
    print(f"\n{message}")
    assert "bert/embeddings/position_embeddings: expected (32, 32), found (32, 16)" in message
    assert "the checkpoint is Google-format ALBERT but the config describes a brightmart albert_zh encoder" in message
    assert "different families" in message


def test_brightmart_checkpoint_with_google_config_explains_the_family_mix(tmp_path):
    prefix = _checkpoint(tmp_path, "brightmart")
    with pytest.raises(CheckpointError, match="the checkpoint is brightmart albert_zh but the config describes a "
                                              "Google-format ALBERT encoder"):
        load_albert_checkpoint(_encoder("google"), prefix)


def test_missing_encoder_variable_is_named_and_nothing_is_assigned(tmp_path):
    values = config_json("google")
    tensors = encoder_tensors("google", values)
    del tensors["bert/encoder/transformer/group_0/inner_group_0/LayerNorm_1/gamma"]
    prefix = _checkpoint(tmp_path, "google", tensors=tensors)
    encoder = _encoder("google")
    encoder.build()
    before = [weight.numpy() for weight in encoder.weights]
    with pytest.raises(CheckpointError, match=r"missing encoder variables: "
                                              r"bert/encoder/transformer/group_0/inner_group_0/LayerNorm_1/gamma "
                                              r"\(expected shape \(32,\)\)"):
        load_albert_checkpoint(encoder, prefix)
    for weight, value in zip(encoder.weights, before, strict=True):
        np.testing.assert_array_equal(weight.numpy(), value)


def test_wrong_shape_is_named_with_expected_and_found(tmp_path):
    values = config_json("brightmart")
    tensors = encoder_tensors("brightmart", values)
    tensors["bert/encoder/layer_shared/intermediate/dense/kernel"] = np.zeros((32, 48), np.float32)
    prefix = _checkpoint(tmp_path, "brightmart", tensors=tensors)
    with pytest.raises(CheckpointError, match=r"shape mismatch: bert/encoder/layer_shared/intermediate/dense/kernel: "
                                              r"expected \(32, 64\), found \(32, 48\)"):
        load_albert_checkpoint(_encoder("brightmart"), prefix)


def test_groups_the_config_does_not_have_are_reported(tmp_path):
    prefix = _checkpoint(tmp_path, "google", num_hidden_layers=2, num_hidden_groups=2)
    with pytest.raises(CheckpointError, match=r"no place for \(check num_hidden_groups.*\): "
                                              r"bert/encoder/transformer/group_1/inner_group_0/"):
        load_albert_checkpoint(_encoder("google", num_hidden_layers=2, num_hidden_groups=1), prefix)


def test_bert_and_foreign_checkpoints_are_rejected(tmp_path):
    bert = write_tf1_checkpoint(tmp_path / "bert.ckpt", {
        "bert/encoder/layer_0/attention/self/query/kernel": np.zeros((4, 4), np.float32)})
    with pytest.raises(CheckpointError, match="this is a BERT checkpoint"):
        load_albert_checkpoint(_encoder("brightmart"), bert)
    other = write_tf1_checkpoint(tmp_path / "other.ckpt", {"dense/kernel": np.zeros((4, 4), np.float32)})
    with pytest.raises(CheckpointError, match="not an ALBERT checkpoint.*it has dense/kernel"):
        load_albert_checkpoint(_encoder("brightmart"), other)
    with pytest.raises(CheckpointError, match="nothing.ckpt: cannot read TensorFlow checkpoint"):
        load_albert_checkpoint(_encoder("brightmart"), tmp_path / "nothing.ckpt")


@pytest.mark.parametrize("family, sizes", [
    ("brightmart", {}),  # albert_tiny_zh
    ("google", {"num_hidden_groups": 1, "inner_group_num": 1}),  # albert_tiny_zh_google
])
def test_real_tiny_sizes_load(tmp_path, family, sizes):
    tiny = {"vocab_size": 21128, "embedding_size": 128, "hidden_size": 312, "num_hidden_layers": 4,
            "num_attention_heads": 12, "intermediate_size": 1248, "max_position_embeddings": 512,
            "initializer_range": 0.02, **sizes}
    values = config_json(family, **tiny)
    prefix = _checkpoint(tmp_path, family, **tiny)
    config = AlbertConfig.from_dict(values)
    if family == "brightmart":
        assert config == ALBERT_TINY
    report = load_albert_checkpoint(AlbertEncoder(config), prefix)
    assert len(report.loaded) == {"brightmart": 22, "google": 23}[family]


def test_find_pretrained_in_directory_and_in_unzipped_subfolder(tmp_path):
    write_pretrained_directory(tmp_path / "flat")
    files = find_pretrained(tmp_path / "flat")
    assert os.path.basename(files.config_path) == "albert_config_tiny.json"
    assert files.vocab_path == str(tmp_path / "flat" / "vocab.txt")
    assert files.weights == str(tmp_path / "flat" / "albert_model.ckpt")

    write_pretrained_directory(tmp_path / "channel" / "albert_tiny_zh_google", family="google")
    files = find_pretrained(tmp_path / "channel")
    assert files.config_path == str(tmp_path / "channel" / "albert_tiny_zh_google" / "albert_config.json")
    report = load_albert_checkpoint(AlbertEncoder(AlbertConfig.from_json_file(files.config_path)),
                                    files.weights)
    assert report.family == "google"


def test_find_pretrained_prefers_albert_config_and_accepts_bert_config(tmp_path):
    write_pretrained_directory(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    assert os.path.basename(find_pretrained(tmp_path).config_path) == "albert_config_tiny.json"
    os.rename(tmp_path / "albert_config_tiny.json", tmp_path / "bert_config.json")
    assert os.path.basename(find_pretrained(tmp_path).config_path) == "bert_config.json"


def test_find_pretrained_lists_what_is_missing_and_what_was_found(tmp_path):
    write_pretrained_directory(tmp_path)
    os.remove(tmp_path / "vocab.txt")
    os.remove(tmp_path / "albert_model.ckpt.data-00000-of-00001")
    with pytest.raises(CheckpointError) as error:
        find_pretrained(tmp_path)
    message = str(error.value)
    assert "missing vocab.txt, the data file of checkpoint albert_model.ckpt" in message
    assert "found albert_config_tiny.json; albert_model.ckpt.index" in message


def test_find_pretrained_rejects_ambiguity_and_non_directories(tmp_path):
    write_pretrained_directory(tmp_path / "a")
    write_pretrained_directory(tmp_path / "b")
    with pytest.raises(CheckpointError, match=r"several ALBERT config files: a/albert_config_tiny.json, "
                                              r"b/albert_config_tiny.json"):
        find_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="does not exist or is not a directory"):
        find_pretrained(tmp_path / "absent")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="missing an ALBERT config .*vocab.txt.*found no files"):
        find_pretrained(empty)
