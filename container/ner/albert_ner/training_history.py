"""What a training job did over time: loss, learning rate and throughput at each progress line, the
validation scores at each evaluation, and the wall time of each phase, for the report page's curves.

The loop records the figures it already logs, so the page and the log say the same. The history is saved
beside the checkpoints whenever one is written, and a resumed job continues it from there; what a stopped
run did after its last checkpoint is dropped, as the resumed run redoes those steps. Phase times are
this run's only.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from albert_ner.files import write_text_atomically

log = logging.getLogger("albert_ner.training")

HISTORY_FILE = "training_history.json"


@dataclass(frozen=True)
class LogPoint:
    """The figures of one progress line: ``train_loss`` is the mean over the steps since the previous one."""

    step: int
    epoch: int
    train_loss: float
    learning_rate: float
    sentences_per_sec: float


@dataclass(frozen=True)
class EvaluationPoint:
    step: int
    epoch: int
    precision: float
    recall: float
    f1: float
    seconds: float


@dataclass
class TrainingHistory:
    """The curves of one job (across resumes) and the phases of this run; ``resumed_at`` lists the steps
    this job was resumed from, so the page can say which part of the curves earlier runs drew."""

    log_points: list[LogPoint] = field(default_factory=list)
    evaluations: list[EvaluationPoint] = field(default_factory=list)
    resumed_at: list[int] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    #: Added to the steps recorded: a self-training round's steps follow those of the rounds before it.
    step_offset: int = 0
    #: A ``tf.summary`` writer, set by the job, that gets the curves for TensorBoard too (train_loss, val_f1).
    tensorboard: Any = field(default=None, repr=False, compare=False)
    _lap_started: float = field(default_factory=time.monotonic, repr=False, compare=False)

    def record_log(self, step: int, epoch: int, train_loss: float, learning_rate: float,
                   sentences_per_sec: float) -> None:
        step += self.step_offset
        self.log_points.append(LogPoint(step, epoch, train_loss, learning_rate, sentences_per_sec))
        self._scalar("train_loss", train_loss, step)

    def record_evaluation(self, step: int, epoch: int, precision: float, recall: float, f1: float,
                          seconds: float) -> None:
        step += self.step_offset
        self.evaluations.append(EvaluationPoint(step, epoch, precision, recall, f1, seconds))
        self._scalar("val_f1", f1, step)

    def _scalar(self, name: str, value: float, step: int) -> None:
        if self.tensorboard is not None:
            import tensorflow as tf  # only a job with a writer needs TensorFlow here

            with self.tensorboard.as_default(step=step):
                tf.summary.scalar(name, value)

    def lap(self, phase: str) -> None:
        """End ``phase``: its wall time is the time since the previous lap (or since the history was made)."""
        now = time.monotonic()
        self.phases[phase] = self.phases.get(phase, 0.0) + now - self._lap_started
        self._lap_started = now

    def save(self, directory: Path) -> None:
        curves = {"log_points": [asdict(point) for point in self.log_points],
                  "evaluations": [asdict(point) for point in self.evaluations], "resumed_at": self.resumed_at}
        write_text_atomically(directory / HISTORY_FILE, json.dumps(curves) + "\n")

    def resume(self, directory: Path, step: int) -> None:
        """Take the curves saved in ``directory`` up to ``step``, where this job resumes. A missing or
        unreadable file is logged and the job goes on: the page then shows only what this run draws."""
        self.resumed_at = [step]
        try:
            saved = json.loads((directory / HISTORY_FILE).read_text(encoding="utf-8"))
            log_points = [LogPoint(**point) for point in saved["log_points"] if point["step"] <= step]
            evaluations = [EvaluationPoint(**point) for point in saved["evaluations"] if point["step"] <= step]
            resumed_at = [at for at in saved["resumed_at"] if at < step]
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warning("no training history before step %d for the report (%s: %s): its curves start there",
                        step, directory / HISTORY_FILE, error)
            return
        self.log_points, self.evaluations, self.resumed_at = log_points, evaluations, resumed_at + [step]
