"""Everything a stopped job needs to continue exactly where it was: checkpoints in /opt/ml/checkpoints.

Managed spot training stops jobs at any moment and restarts them with ``/opt/ml/checkpoints`` restored
from S3. A checkpoint holds the weights, both optimizers' slots, step counters and weight averages, the
dropout RNG states, the float16 loss scale, and the data position (epoch and next batch; the batch order of
an epoch and its token dropout are pure functions of seed, epoch and batch), so a resumed run takes the
exact batches the stopped one would have taken.
The best weights so far are kept beside the checkpoints, because early stopping returns them.

Variables are saved by position in flat lists rather than through Keras' object graph: Keras 3 models
give ``tf.train.Checkpoint`` only some of their nested layers' variables, which would make a resumed run
silently start from half-trained weights.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from albert_ner.errors import CheckpointError
from albert_ner.files import replacing
from albert_ner.stop_signal import StopSignal

log = logging.getLogger("albert_ner.training_state")

BEST_WEIGHTS_FILE = "best_weights.npz"


def _variables(variables: Sequence[tf.Variable]) -> tf.train.Checkpoint:
    return tf.train.Checkpoint(**{f"v{index:05d}": variable for index, variable in enumerate(variables)})


@dataclass
class Progress:
    """Where the loop stands: the epoch and batch to run next, steps done, and early-stopping state."""

    epoch: int = 1
    next_batch: int = 0
    step: int = 0
    best_f1: float = -1.0
    evaluations_since_best: int = 0


class TrainingState:
    """Saves and restores the loop's state under ``directory``, keeping the newest ``keep`` checkpoints."""

    def __init__(self, directory: Path, model: keras.Model, optimizers: Sequence[keras.optimizers.Optimizer],
                 loss_scale: tf.Variable, keep: int, writer: bool = True):
        self.directory = directory
        self.model = model
        self.optimizers = tuple(optimizers)
        self.writer = writer
        self._counters = tf.Variable([1, 0, 0, 0], dtype=tf.int64, trainable=False)
        self._best_f1 = tf.Variable(-1.0, dtype=tf.float64, trainable=False)
        self._checkpoint = tf.train.Checkpoint(
            model=_variables(model.variables),
            optimizers=tf.train.Checkpoint(**{f"o{i}": _variables(o.variables) for i, o in enumerate(optimizers)}),
            loss_scale=loss_scale, counters=self._counters, best_f1=self._best_f1)
        # Only the writer keeps checkpoints where SageMaker syncs them; the other workers of a
        # multi-worker job must still save (collectively) but do so to a scratch directory outside it
        # (the pretraining's and the self-training rounds' state lives inside the synced directory).
        target = directory if writer else Path(tempfile.gettempdir()) / (
            f"albert-ner-worker-scratch-{os.getpid()}-{directory.name}")
        self._manager = tf.train.CheckpointManager(self._checkpoint, str(target), max_to_keep=keep,
                                                   checkpoint_name="ckpt")

    def restore(self) -> Progress | None:
        """Load the newest usable checkpoint; ``None`` when there is none (a fresh start).

        A checkpoint that cannot be read (cut short by a kill, truncated in transit) is skipped with a
        warning naming it. One that reads but does not fit this model is an error: starting over would
        overwrite a job's checkpoints with another one's.
        """
        candidates = self._candidates()
        for path in candidates:
            try:
                self._checkpoint.read(path).assert_existing_objects_matched()
            except (tf.errors.OpError, ValueError, IndexError) as error:
                if _is_unreadable(error):
                    log.warning("skipping checkpoint %s: it cannot be read (%s)", path,
                                str(error).splitlines()[0])
                    continue
                raise CheckpointError(
                    f"{path}: this checkpoint does not fit the model being trained ({str(error).splitlines()[0]}); "
                    f"it belongs to another job or configuration. Use a fresh checkpoint location "
                    f"or remove {self.directory}") from None
            epoch, next_batch, step, since_best = (int(value) for value in self._counters.numpy())
            progress = Progress(epoch, next_batch, step, float(self._best_f1.numpy()), since_best)
            log.info("resuming from checkpoint %s: epoch %d, batch %d, step %d, best validation F1 %.4f",
                     path, epoch, next_batch, step, progress.best_f1)
            return progress
        if candidates:
            raise CheckpointError(f"{self.directory}: none of its {len(candidates)} checkpoint(s) can be read, and "
                                  "starting over would overwrite them: restore them, or remove them to start over")
        return None

    def _candidates(self) -> list[str]:
        """The checkpoints to try, newest first: those the state file (``checkpoint``) lists, else every
        ``ckpt-N`` on disk, so that a state file cut short or lost does not make a job start over on top of
        its own checkpoints (TensorFlow then only logs "Checkpoint ignored")."""
        listed = list(reversed(self._manager.checkpoints))
        if listed:
            return listed
        found = sorted(((int(match.group(1)), str(path.with_suffix("")))
                        for path in self.directory.glob("ckpt-*.index")
                        if (match := re.fullmatch(r"ckpt-(\d+)\.index", path.name))), reverse=True)
        if found:
            log.warning("%s lists no checkpoint (it is missing or unreadable), but %d are on disk: resuming from "
                        "the newest that can be read", self.directory / "checkpoint", len(found))
        return [prefix for _, prefix in found]

    def save(self, progress: Progress) -> str:
        self._counters.assign([progress.epoch, progress.next_batch, progress.step, progress.evaluations_since_best])
        self._best_f1.assign(progress.best_f1)
        started = time.perf_counter()
        path = self._manager.save(checkpoint_number=progress.step)
        log.info("saved checkpoint %s (epoch %d, batch %d, step %d) checkpoint_s=%.2f", path, progress.epoch,
                 progress.next_batch, progress.step, time.perf_counter() - started)
        return path

    def save_best_weights(self, weights: list[np.ndarray]) -> None:
        if not self.writer:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        with replacing(self.directory / BEST_WEIGHTS_FILE) as partial, open(partial, "wb") as stream:
            np.savez(stream, *weights)

    def load_best_weights(self) -> list[np.ndarray] | None:
        path = self.directory / BEST_WEIGHTS_FILE
        if not path.is_file():
            return None
        with np.load(path) as archive:
            return [archive[f"arr_{index}"] for index in range(len(archive.files))]


def weights_fingerprint(model: keras.Model) -> str:
    """A digest of the weights, so that the workers of a multi-worker job can be seen to agree."""
    return weights_digest(model.get_weights())


def weights_digest(weights: Sequence[np.ndarray]) -> str:
    """The first 16 hex digits of a sha256 over the arrays' bytes, in order."""
    digest = hashlib.sha256()
    for array in weights:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def _is_unreadable(error: Exception) -> bool:
    """Corruption and missing shards, as opposed to a checkpoint of a different model."""
    # A truncated data shard surfaces as IndexError("Read less bytes than requested") from the reader.
    if isinstance(error, (tf.errors.DataLossError, tf.errors.NotFoundError, tf.errors.OutOfRangeError,
                          IndexError)):
        return True
    text = str(error).lower()
    return any(word in text for word in ("corrupt", "truncated", "unable to open", "not found", "checksum"))


def checkpoint_due(every: int, progress: Progress, epoch_ended_or_stopping: bool, stop_signal: StopSignal) -> bool:
    """Checkpoint at the end of each epoch and of the job, every ``every`` steps (``checkpoint_every_steps``),
    and on SIGTERM."""
    return (epoch_ended_or_stopping or stop_signal.received is not None
            or bool(every and progress.step % every == 0))
