"""Script mode (bring your own script): `train` as an entry_point on the AWS prebuilt TensorFlow image.

The framework container runs `python train --name value ...` with SM_MODEL_DIR, SM_CHANNEL_<NAME> and
SM_OUTPUT_DATA_DIR set and no hyperparameters.json of ours; this runs the real program the same way.
No Docker needed.
"""

from __future__ import annotations

import os
import subprocess
import sys

from .sagemaker_layout import MODEL_ARTIFACTS, REPO, TINY_HYPERPARAMETERS, write_channels

TRAIN = REPO / "container" / "ner" / "train"


def test_train_runs_as_a_script_mode_entry_point(tmp_path):
    channels = write_channels(tmp_path / "channels")
    model_dir, output_data_dir = tmp_path / "model", tmp_path / "output-data"
    environment = {
        **os.environ,
        "SAGEMAKER_BASE_DIR": str(tmp_path / "opt-ml"),  # stands in for /opt/ml, which holds no config here
        "SM_MODEL_DIR": str(model_dir),
        "SM_CHANNEL_TRAINING": str(channels["training"]),
        "SM_CHANNEL_VALIDATION": str(channels["validation"]),
        "SM_OUTPUT_DATA_DIR": str(output_data_dir),
        "SM_CHANNELS": '["training", "validation"]',
        "PYTHONUNBUFFERED": "1",
    }
    arguments = [item for key, value in TINY_HYPERPARAMETERS.items() for item in (f"--{key}", value)]
    # The framework containers call the entry point with the interpreter, not through its shebang.
    result = subprocess.run([sys.executable, str(TRAIN), *arguments], env=environment, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    for name in MODEL_ARTIFACTS:
        assert (model_dir / name).is_file(), f"{name} not in SM_MODEL_DIR"
    assert "val_f1=" in result.stdout
    assert (output_data_dir / "training.log").is_file()


def test_misspelt_command_line_hyperparameter_fails_naming_it(tmp_path):
    channels = write_channels(tmp_path / "channels")
    environment = {**os.environ, "SAGEMAKER_BASE_DIR": str(tmp_path / "opt-ml"),
                   "SM_MODEL_DIR": str(tmp_path / "model"), "SM_CHANNEL_TRAINING": str(channels["training"]),
                   "SM_OUTPUT_DATA_DIR": str(tmp_path / "output-data")}
    result = subprocess.run([sys.executable, str(TRAIN), "--epochs", "1", "--lerning-rate", "0.1"],
                            env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "lerning_rate" in (tmp_path / "opt-ml" / "output" / "failure").read_text(encoding="utf-8")
