"""User-facing errors.

Every failure a user can cause (bad data, bad hyperparameters, a checkpoint that does not fit) raises a
subclass of :class:`AlbertNerError`. The `train` entrypoint writes its message, unchanged, as the first
line of ``/opt/ml/output/failure``, which SageMaker shows as the job's FailureReason, so messages must
make sense on their own: they name the file and line, the key and value, or the expected and found shape.
"""

from __future__ import annotations

import os


class AlbertNerError(Exception):
    """Base class of errors whose message is meant for the user as is."""


class DataError(AlbertNerError):
    """Labelled data that cannot be read as given.

    The location is part of the message so that it survives being written to a failure file.
    """

    def __init__(self, message: str, path: str | os.PathLike[str] | None = None, line: int | None = None):
        self.path = None if path is None else os.fspath(path)
        self.line = line
        self.reason = message
        location = ""
        if self.path is not None:
            location = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        super().__init__(location + message)


class CheckpointError(AlbertNerError):
    """A pretrained ALBERT directory, config or checkpoint that does not fit the model."""


class ModelDirectoryError(AlbertNerError):
    """A model directory that lacks a file or holds one that cannot be read. The message names the file by
    its name inside the model directory, never by a host path, so an endpoint can answer with it."""


class HyperparameterError(AlbertNerError):
    """A hyperparameter that is unknown, of the wrong type, or out of range."""


class TrainingStopped(AlbertNerError):
    """The job was asked to stop (SIGTERM) and saved a checkpoint to resume from; not a failure."""
