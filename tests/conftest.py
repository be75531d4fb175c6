"""Shared fixtures: /opt/ml-style trees and real subprocess runs of the `train` program."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TRAIN = REPO / "container" / "ner" / "train"
SAMPLE = REPO / "data" / "sample"

# A model small enough to train in seconds on two cores, big enough to learn the sample corpus.
TINY_HYPERPARAMETERS = {
    "encoder_size": "tiny",
    "num_hidden_layers": "1",
    "lstm_units": "32",
    "max_seq_length": "32",
    "batch_size": "16",
    "epochs": "4",
    "learning_rate": "1e-3",
    "head_learning_rate": "5e-3",
    "log_every_steps": "10",
    # The ONNX copies take seconds to convert; the tests of them (test_onnx_runtime.py) turn them on.
    "onnx_export": "off",
}


@dataclass
class OptMl:
    """A directory laid out like /opt/ml, and how to run `train` against it."""

    base: Path

    @property
    def model_dir(self) -> Path:
        return self.base / "model"

    @property
    def output_data_dir(self) -> Path:
        return self.base / "output" / "data"

    @property
    def failure(self) -> Path:
        return self.base / "output" / "failure"

    def write_hyperparameters(self, values: dict) -> None:
        config = self.base / "input" / "config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "hyperparameters.json").write_text(json.dumps(values, ensure_ascii=False), encoding="utf-8")

    def add_channel(self, name: str, *files: Path, contents: dict[str, str] | None = None) -> Path:
        channel = self.base / "input" / "data" / name
        channel.mkdir(parents=True, exist_ok=True)
        for file in files:
            shutil.copy(file, channel / file.name)
        for file_name, text in (contents or {}).items():
            (channel / file_name).write_text(text, encoding="utf-8")
        return channel

    def run_train(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        environ = dict(os.environ, SAGEMAKER_BASE_DIR=str(self.base), PYTHONUNBUFFERED="1")
        return subprocess.run([sys.executable, str(TRAIN), *args], env=environ, capture_output=True,
                              text=True, timeout=timeout)


@pytest.fixture
def opt_ml(tmp_path: Path) -> OptMl:
    return OptMl(tmp_path / "opt_ml")


def sample_job(opt_ml: OptMl, hyperparameters: dict) -> None:
    """The sample corpus in all three channels, and the given hyperparameters."""
    opt_ml.write_hyperparameters(hyperparameters)
    opt_ml.add_channel("training", SAMPLE / "train.txt")
    opt_ml.add_channel("validation", SAMPLE / "validation.jsonl")
    opt_ml.add_channel("test", SAMPLE / "test.txt")


@pytest.fixture(scope="session")
def trained_job(tmp_path_factory: pytest.TempPathFactory) -> tuple[OptMl, subprocess.CompletedProcess]:
    """One `train` run of the tiny model on the sample corpus, shared by every test that only reads its
    outputs (the model directory, the reports, the log). Tests must not write into it."""
    opt_ml = OptMl(tmp_path_factory.mktemp("trained") / "opt_ml")
    sample_job(opt_ml, {**TINY_HYPERPARAMETERS, "onnx_export": "dynamic"})
    result = opt_ml.run_train()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return opt_ml, result
