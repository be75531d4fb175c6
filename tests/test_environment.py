"""The /opt/ml layout, moved by SAGEMAKER_BASE_DIR, and the framework containers' SM_* variables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from albert_ner.environment import TrainingEnvironment
from albert_ner.errors import AlbertNerError


def layout(base: Path, channels: tuple[str, ...] = ("training", "test")) -> None:
    for channel in channels:
        (base / "input" / "data" / channel).mkdir(parents=True)
    (base / "input" / "config").mkdir(parents=True, exist_ok=True)


def test_paths_follow_the_base_dir(tmp_path: Path) -> None:
    layout(tmp_path)
    env = TrainingEnvironment.from_environ({"SAGEMAKER_BASE_DIR": str(tmp_path)})
    assert env.model_dir == tmp_path / "model"
    assert env.output_data_dir == tmp_path / "output" / "data"
    assert env.failure_path == tmp_path / "output" / "failure"
    assert env.checkpoint_dir == tmp_path / "checkpoints"
    assert env.hyperparameters_path == tmp_path / "input" / "config" / "hyperparameters.json"
    assert env.channel_input_dirs == {"test": tmp_path / "input/data/test",
                                      "training": tmp_path / "input/data/training"}
    assert env.hosts == ("algo-1",) and env.is_chief


def test_default_base_is_opt_ml() -> None:
    assert TrainingEnvironment.from_environ({}).model_dir == Path("/opt/ml/model")


def test_resource_config_gives_hosts_sorted_and_the_chief(tmp_path: Path) -> None:
    layout(tmp_path)
    (tmp_path / "input/config/resourceconfig.json").write_text(json.dumps(
        {"current_host": "algo-2", "hosts": ["algo-2", "algo-1"], "network_interface_name": "eth0"}))
    env = TrainingEnvironment.from_environ({"SAGEMAKER_BASE_DIR": str(tmp_path)})
    assert env.hosts == ("algo-1", "algo-2")
    assert env.current_host == "algo-2" and not env.is_chief
    assert env.network_interface_name == "eth0"


def test_framework_container_variables_win(tmp_path: Path) -> None:
    layout(tmp_path)
    env = TrainingEnvironment.from_environ({
        "SAGEMAKER_BASE_DIR": str(tmp_path), "SM_MODEL_DIR": "/m", "SM_CHANNEL_TRAIN": "/data/train",
        "SM_OUTPUT_DATA_DIR": "/o", "SM_CHANNELS": '["train"]'})
    assert env.model_dir == Path("/m") and env.output_data_dir == Path("/o")
    assert env.channel_input_dirs["train"] == Path("/data/train")


def test_malformed_config_file_is_named(tmp_path: Path) -> None:
    layout(tmp_path)
    (tmp_path / "input/config/resourceconfig.json").write_text("{not json")
    with pytest.raises(AlbertNerError, match=r"resourceconfig.json: not valid JSON"):
        TrainingEnvironment.from_environ({"SAGEMAKER_BASE_DIR": str(tmp_path)})


def test_baked_pretrained_dir_counts_only_when_it_holds_files(tmp_path: Path) -> None:
    layout(tmp_path)
    baked = tmp_path / "pretrained"
    baked.mkdir()
    environ = {"SAGEMAKER_BASE_DIR": str(tmp_path), "ALBERT_NER_PRETRAINED_DIR": str(baked)}
    assert TrainingEnvironment.from_environ(environ).baked_pretrained_dir is None
    (baked / "albert_config.json").write_text("{}")
    assert TrainingEnvironment.from_environ(environ).baked_pretrained_dir == baked
    assert TrainingEnvironment.from_environ({"SAGEMAKER_BASE_DIR": str(tmp_path)}).baked_pretrained_dir is None


def test_pipe_mode_channels_are_their_first_fifo(tmp_path: Path) -> None:
    layout(tmp_path, channels=("validation",))
    (tmp_path / "input/config/inputdataconfig.json").write_text(json.dumps({
        "training": {"TrainingInputMode": "Pipe", "RecordWrapperType": "RecordIO"},
        "validation": {"TrainingInputMode": "File"}}))
    env = TrainingEnvironment.from_environ({"SAGEMAKER_BASE_DIR": str(tmp_path),
                                            "SM_CHANNEL_TRAINING": str(tmp_path / "input/data/training")})
    assert env.channel_input_dirs == {"training": tmp_path / "input/data/training_0",
                                      "validation": tmp_path / "input/data/validation"}
    assert env.input_modes == {"training": "Pipe", "validation": "File"}
    (tmp_path / "input/config/inputdataconfig.json").write_text(json.dumps({"training": {"TrainingInputMode": "X"}}))
    with pytest.raises(AlbertNerError, match="channel 'training' has TrainingInputMode 'X'"):
        TrainingEnvironment.from_environ({"SAGEMAKER_BASE_DIR": str(tmp_path)})
