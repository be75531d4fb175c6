"""What the container tests feed the trainer and expect back, shared by the Docker and no-Docker tests."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"

# Trains in seconds on the sample corpus; the values are strings, as SageMaker writes them.
TINY_HYPERPARAMETERS = {
    "encoder_size": "tiny", "num_hidden_layers": "1", "lstm_units": "32", "max_seq_length": "32",
    "batch_size": "16", "epochs": "1", "learning_rate": "1e-3", "head_learning_rate": "5e-3",
    "log_every_steps": "10",
    # Static int8: its answers do not depend on the batch, so the endpoint's answers can be compared with
    # `albert-ner predict`'s (dynamic quantization's ranges are each batch's own; docs/serving.md#runtimes).
    "onnx_export": "static",
}
MODEL_ARTIFACTS = ("model.weights.h5", "model_config.json", "label_map.json", "vocab.txt",
                   "validation_report.json", "onnx/tagger.onnx", "onnx/tagger.int8.onnx", "onnx/agreement.json")


def write_channels(root: Path) -> dict[str, Path]:
    """training (CoNLL BIO) and validation (JSON Lines) channels from the sample corpus."""
    channels = {"training": root / "training", "validation": root / "validation"}
    for directory in channels.values():
        directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(SAMPLE / "train.txt", channels["training"])
    shutil.copy(SAMPLE / "validation.jsonl", channels["validation"])
    return channels
