"""Where a SageMaker training job keeps its inputs and outputs.

SageMaker mounts everything under ``/opt/ml``. Like the SageMaker training toolkit, ``SAGEMAKER_BASE_DIR``
moves that root elsewhere so that tests and users can run ``train`` against any directory laid out like
``/opt/ml``. The names (``model_dir``, ``channel_input_dirs``, ``current_host``, ``hosts``) are the
toolkit's, so people who know it find their way here.

The AWS framework containers (script mode) describe the same places through ``SM_MODEL_DIR``,
``SM_CHANNEL_<NAME>`` and ``SM_OUTPUT_DATA_DIR``; when those are set they win, so the same trainer runs as
an ``entry_point`` on the prebuilt TensorFlow image.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from albert_ner.errors import AlbertNerError

DEFAULT_BASE_DIR = "/opt/ml"


@dataclass(frozen=True)
class TrainingEnvironment:
    """The paths and cluster facts of one training job."""

    base_dir: Path
    model_dir: Path
    output_data_dir: Path
    channel_input_dirs: dict[str, Path]
    current_host: str = "algo-1"
    hosts: tuple[str, ...] = ("algo-1",)
    network_interface_name: str | None = None
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def input_config_dir(self) -> Path:
        return self.base_dir / "input" / "config"

    @property
    def hyperparameters_path(self) -> Path:
        return self.input_config_dir / "hyperparameters.json"

    @property
    def output_dir(self) -> Path:
        return self.base_dir / "output"

    @property
    def failure_path(self) -> Path:
        """SageMaker shows the first 1,024 characters of this file as the job's FailureReason."""
        return self.output_dir / "failure"

    @property
    def checkpoint_dir(self) -> Path:
        """Synced to S3 by SageMaker and restored when a managed spot job restarts."""
        return Path(self.environ.get("SM_CHECKPOINT_DIR", str(self.base_dir / "checkpoints")))

    @property
    def is_chief(self) -> bool:
        """With several hosts SageMaker merges their model trees, so only the first host writes."""
        return self.current_host == self.hosts[0]

    @property
    def baked_pretrained_dir(self) -> Path | None:
        """A pretrained ALBERT directory built into the image (``ALBERT_NER_PRETRAINED_DIR``), if it holds files.

        The Dockerfile always sets the variable; the directory is empty unless the image was built with a
        checkpoint, so an image without one trains from scratch by default.
        """
        value = self.environ.get("ALBERT_NER_PRETRAINED_DIR")
        if not value or not Path(value).is_dir() or not any(Path(value).iterdir()):
            return None
        return Path(value)

    def read_hyperparameters(self) -> dict[str, str]:
        """The raw hyperparameters.json (every value a string); empty when the file is absent."""
        return _read_json_object(self.hyperparameters_path, required=False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> "TrainingEnvironment":
        environ = dict(os.environ if environ is None else environ)
        base_dir = Path(environ.get("SAGEMAKER_BASE_DIR", DEFAULT_BASE_DIR))
        input_dir = base_dir / "input"
        channels = _channels_from_disk(input_dir / "data")
        for key, value in environ.items():
            if key.startswith("SM_CHANNEL_") and key != "SM_CHANNELS":
                channels[key[len("SM_CHANNEL_"):].lower()] = Path(value)
        resources = _read_json_object(input_dir / "config" / "resourceconfig.json", required=False)
        hosts = tuple(sorted(resources.get("hosts", []))) or ("algo-1",)
        current_host = resources.get("current_host", hosts[0])
        if current_host not in hosts:
            raise AlbertNerError(
                f"resourceconfig.json: current_host {current_host!r} is not among hosts {list(hosts)}"
            )
        return cls(
            base_dir=base_dir,
            model_dir=Path(environ.get("SM_MODEL_DIR", str(base_dir / "model"))),
            output_data_dir=Path(environ.get("SM_OUTPUT_DATA_DIR", str(base_dir / "output" / "data"))),
            channel_input_dirs=channels,
            current_host=current_host,
            hosts=hosts,
            network_interface_name=resources.get("network_interface_name"),
            environ=environ,
        )


def _channels_from_disk(data_dir: Path) -> dict[str, Path]:
    if not data_dir.is_dir():
        return {}
    return {entry.name: entry for entry in sorted(data_dir.iterdir()) if entry.is_dir()}


def _read_json_object(path: Path, required: bool) -> dict:
    if not path.exists():
        if required:
            raise AlbertNerError(f"{path}: file not found")
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AlbertNerError(f"{path}: not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise AlbertNerError(f"{path}: expected a JSON object, found {type(value).__name__}")
    return value
