"""Where a SageMaker job keeps its inputs and outputs, and the settings it is given through the environment.

SageMaker mounts everything under ``/opt/ml``. Like the SageMaker training toolkit, ``SAGEMAKER_BASE_DIR``
moves that root elsewhere so that tests and users can run ``train`` against any directory laid out like
``/opt/ml``. The names (``model_dir``, ``channel_input_dirs``, ``current_host``, ``hosts``) are the
toolkit's, so people who know it find their way here.

A channel in Pipe mode (``TrainingInputMode`` in ``input/config/inputdataconfig.json``) is not a directory:
SageMaker streams it into the FIFO ``input/data/<channel>_<epoch>``. Its entry in ``channel_input_dirs``
is then the first epoch's FIFO, ``<channel>_0``, which the readers recognise and read once.

The AWS framework containers (script mode) describe the same places through ``SM_MODEL_DIR``,
``SM_CHANNEL_<NAME>`` and ``SM_OUTPUT_DATA_DIR``; when those are set they win, so the same trainer runs as
an ``entry_point`` on the prebuilt TensorFlow image.

:class:`ServingSettings` is the same for ``serve``: the model directory, port, workers, timeout, batch
mode and payload limit, read from the variables AWS's inference toolkit defines.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from albert_ner.errors import AlbertNerError
from albert_ner.label_studio.config import parse_label_mapping
from albert_ner.resources import MIB, available_cores, default_workers

DEFAULT_BASE_DIR = "/opt/ml"
#: Worker i of a multi-worker job listens on this port + i, so that several can share one machine (tests).
DEFAULT_WORKER_PORT = 7777
#: Texts one real-time request may hold: at a few hundred sentences a second per core, a full request
#: answers well inside SageMaker's 60 s (ALBERT_NER_MAX_TEXTS_PER_REQUEST; 0 removes the limit).
DEFAULT_MAX_TEXTS_PER_REQUEST = 1000


def base_dir(environ: Mapping[str, str]) -> Path:
    """The ``/opt/ml`` root, moved by ``SAGEMAKER_BASE_DIR``."""
    return Path(environ.get("SAGEMAKER_BASE_DIR", DEFAULT_BASE_DIR))


def output_data_dir(environ: Mapping[str, str]) -> Path:
    """``output/data`` (packed into output.tar.gz), or ``SM_OUTPUT_DATA_DIR`` in script mode."""
    return Path(environ.get("SM_OUTPUT_DATA_DIR", str(base_dir(environ) / "output" / "data")))


def failure_path(environ: Mapping[str, str]) -> Path:
    """SageMaker shows the first 1,024 characters of this file as the job's FailureReason.

    It depends on no configuration file, so that a job whose configuration cannot be read still says why.
    """
    return base_dir(environ) / "output" / "failure"


@dataclass(frozen=True)
class TrainingEnvironment:
    """The paths and cluster facts of one training job."""

    base_dir: Path
    model_dir: Path
    output_data_dir: Path
    channel_input_dirs: dict[str, Path]  # a Pipe-mode channel's entry is its FIFO
    input_modes: dict[str, str] = field(default_factory=dict)  # channel -> File, FastFile or Pipe
    current_host: str = "algo-1"
    hosts: tuple[str, ...] = ("algo-1",)
    network_interface_name: str | None = None
    worker_port: int = DEFAULT_WORKER_PORT
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
        return failure_path(self.environ)

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
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> TrainingEnvironment:
        environ = dict(os.environ if environ is None else environ)
        root = base_dir(environ)
        input_dir = root / "input"
        channels = _channels_from_disk(input_dir / "data")
        for key, value in environ.items():
            if key.startswith("SM_CHANNEL_") and key != "SM_CHANNELS":
                channels[key[len("SM_CHANNEL_"):].lower()] = Path(value)
        input_modes = _input_modes(input_dir / "config" / "inputdataconfig.json")
        for name, mode in input_modes.items():
            if mode == "Pipe":  # script mode's SM_CHANNEL_<NAME> names a directory that Pipe mode leaves empty
                channels[name] = pipe_path(input_dir / "data", name)
        resource_config = input_dir / "config" / "resourceconfig.json"
        resources = _read_json_object(resource_config, required=False)
        listed = resources.get("hosts", [])
        if not isinstance(listed, list) or not all(isinstance(host, str) and host for host in listed):
            raise AlbertNerError(f"{resource_config}: hosts must be a list of host names, found {listed!r}")
        # Without the file (a local run) the job is one host; SageMaker always writes it.
        hosts = tuple(sorted(listed)) or ("algo-1",)
        current_host = resources.get("current_host", hosts[0])
        if current_host not in hosts:
            raise AlbertNerError(f"{resource_config}: current_host {current_host!r} is not among hosts {list(hosts)}")
        return cls(
            base_dir=root,
            model_dir=Path(environ.get("SM_MODEL_DIR", str(root / "model"))),
            output_data_dir=output_data_dir(environ),
            channel_input_dirs=channels,
            input_modes=input_modes,
            current_host=current_host,
            hosts=hosts,
            network_interface_name=resources.get("network_interface_name"),
            worker_port=_port(environ, "ALBERT_NER_WORKER_PORT", DEFAULT_WORKER_PORT),
            environ=environ,
        )


@dataclass(frozen=True)
class ServingSettings:
    """Everything the server's size and limits depend on, read from the environment and the machine."""

    model_dir: Path
    host: str
    port: int
    workers: int
    threads: int
    intra_op_threads: int
    timeout: int  # seconds: each request's deadline, and gunicorn's worker timeout
    batch_mode: bool
    max_texts_per_request: int | None  # real-time requests only; None: no limit
    max_payload_mb: int
    max_batch_size: int
    max_batch_delay: float  # seconds
    # Label Studio's ML backend: its basic-auth credentials (None: open) and entity types to config labels;
    # retraining: where the workers share its state (None: none yet, `serve` makes one), the hyperparameters
    # of the retrains, after how many new annotations one starts (0: on Label Studio's trigger only), and
    # after how many seconds a retrain's `train` is stopped.
    basic_auth: tuple[str, str] | None = None
    label_mapping: Mapping[str, str] = field(default_factory=dict)
    state_dir: Path | None = None
    retrain_hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    retrain_every: int = 0
    retrain_timeout: int = 86400

    @property
    def max_payload_bytes(self) -> int | None:
        """The body limit; None for ``SAGEMAKER_MAX_PAYLOAD_IN_MB=0``, which AWS documents for batch transform
        bodies streamed in HTTP chunks, of no declared size."""
        return self.max_payload_mb * MIB if self.max_payload_mb else None

    @property
    def max_concurrent_transforms(self) -> int:
        """Concurrent batch-transform requests worth sending: one per core (they are batched together)."""
        return max(1, self.workers * self.intra_op_threads)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ServingSettings:
        environ = os.environ if environ is None else environ
        model_dir = Path(environ.get("SM_MODEL_DIR") or base_dir(environ) / "model")
        cores = available_cores()
        workers = (_int(environ, "SAGEMAKER_MODEL_SERVER_WORKERS", 0)
                   or default_workers(cores, model_dir, _serves_on_onnx(model_dir, environ)))
        batch_mode = environ.get("SAGEMAKER_BATCH", "").strip().lower() == "true"
        return cls(
            model_dir=model_dir,
            host=environ.get("ALBERT_NER_BIND_HOST", "0.0.0.0"),
            port=_int(environ, "SAGEMAKER_BIND_TO_PORT", 8080),
            workers=workers,
            # Request threads mostly wait on the batcher; enough of them keep /ping answering under load.
            threads=max(16, 4 * cores // workers),
            intra_op_threads=max(1, cores // workers),
            # SageMaker gives a real-time invocation 60 s, and a batch transform one 600 s by default
            # (InvocationsTimeoutInSeconds): work past that answers a client that has gone.
            timeout=_int(environ, "SAGEMAKER_MODEL_SERVER_TIMEOUT", 600 if batch_mode else 60),
            batch_mode=batch_mode,
            max_texts_per_request=None if batch_mode else (
                _int(environ, "ALBERT_NER_MAX_TEXTS_PER_REQUEST", DEFAULT_MAX_TEXTS_PER_REQUEST) or None),
            max_payload_mb=_int(environ, "SAGEMAKER_MAX_PAYLOAD_IN_MB", 6) if batch_mode else 6,
            max_batch_size=_int(environ, "SAGEMAKER_MAX_BATCH_SIZE", 64),
            max_batch_delay=_int(environ, "SAGEMAKER_MAX_BATCH_DELAY_MS", 5) / 1000,
            basic_auth=_basic_auth(environ),
            label_mapping=parse_label_mapping(environ.get("ALBERT_NER_LABEL_MAPPING", "")),
            state_dir=Path(environ["ALBERT_NER_STATE_DIR"]) if environ.get("ALBERT_NER_STATE_DIR") else None,
            retrain_hyperparameters=_retrain_hyperparameters(environ),
            retrain_every=_int(environ, "ALBERT_NER_RETRAIN_EVERY", 0),
            retrain_timeout=_int(environ, "ALBERT_NER_RETRAIN_TIMEOUT", 86400),
        )


def _retrain_hyperparameters(environ: Mapping[str, str]) -> dict[str, Any]:
    """ALBERT_NER_RETRAIN_HYPERPARAMETERS, a JSON object. Its keys and values are checked by the retrain's
    `train` (whose failure /health then shows): checking them here would import TensorFlow into the
    process that forks the workers."""
    key = "ALBERT_NER_RETRAIN_HYPERPARAMETERS"
    value = environ.get(key, "").strip()
    if not value:
        return {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as error:
        raise AlbertNerError(f"environment variable {key}: not JSON ({error.msg} at character {error.pos})") from None
    if not isinstance(parsed, dict):
        raise AlbertNerError(f"environment variable {key}: expected a JSON object of hyperparameters, found "
                             f"{type(parsed).__name__}")
    return parsed


def _basic_auth(environ: Mapping[str, str]) -> tuple[str, str] | None:
    user, password = environ.get("BASIC_AUTH_USER", ""), environ.get("BASIC_AUTH_PASS", "")
    if bool(user) != bool(password):
        given = "BASIC_AUTH_USER" if user else "BASIC_AUTH_PASS"
        raise AlbertNerError(f"only {given} is set: BASIC_AUTH_USER and BASIC_AUTH_PASS go together (the server then "
                             "wants them on every request but /ping)")
    return (user, password) if user else None


def _serves_on_onnx(model_dir: Path, environ: Mapping[str, str]) -> bool:
    """Whether the workers will run the model on ONNX Runtime; a model directory that cannot tell is left to
    the workers, which report what is wrong with it."""
    from albert_ner.runtimes.choice import TENSORFLOW, choose_runtime, requested_runtime

    try:
        return choose_runtime(model_dir, requested_runtime(environ=environ), announce=False) != TENSORFLOW
    except AlbertNerError:
        return False


def _int(environ: Mapping[str, str], key: str, default: int) -> int:
    value = environ.get(key, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{key}={value!r}: expected a whole number") from None
    if number < 0:
        raise ValueError(f"{key}={value!r}: expected a number >= 0")
    return number




def _port(environ: Mapping[str, str], key: str, default: int) -> int:
    value = environ.get(key, "").strip()
    if not value:
        return default
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise AlbertNerError(f"environment variable {key}={value!r}: expected a TCP port number (1-65535)")
    return int(value)


def pipe_path(data_dir: Path, channel: str, epoch: int = 0) -> Path:
    """The FIFO SageMaker streams a Pipe-mode channel into for one epoch (a new one per epoch)."""
    return data_dir / f"{channel}_{epoch}"


def _input_modes(path: Path) -> dict[str, str]:
    config = _read_json_object(path, required=False)
    modes = {}
    for name, channel in config.items():
        mode = channel.get("TrainingInputMode", "File") if isinstance(channel, dict) else None
        if mode not in ("File", "FastFile", "Pipe"):
            raise AlbertNerError(f"{path}: channel {name!r} has TrainingInputMode {mode!r}; expected File, "
                                 "FastFile or Pipe")
        modes[name] = mode
    return modes


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
