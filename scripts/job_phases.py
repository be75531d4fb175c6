"""The wall time of each phase of scripts/main_job.sh: install, data, training, evaluation.

The shell times what it runs (the install, the corpus fetch, the whole `train` program); the split of
`train` into data, training and evaluation comes from the timestamps of its own log
(`output/data/training.log`), so that it needs no change to the program and holds for any run's log:

- data: the corpus fetch, plus `train` reading, checking and encoding the channels and building the
  vocabulary (from the "hyperparameters:" line to the "training on N windows" line);
- training: the rest of `train` up to the end of the loop: start-up (imports, TensorFlow) and exit, model
  build and the loop with its per-epoch validation passes, which pick the best weights (up to "the
  training step was traced");
- evaluation: after the loop: the final validation pass with the best weights, the test-set prediction and
  scores, and writing the model, the SavedModel and the reports (up to "training finished in").

Standard library only: it runs in the runtime-only environment (.venv-job).
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

# The log's format is albert_ner.cli.LOG_FORMAT: "%(asctime)s %(levelname)s %(name)s: %(message)s".
LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \S+ \S+: (.*)$")
DATA_STARTS = "hyperparameters: "
DATA_ENDS = "training on "
LOOP_ENDS = "the training step was traced "
TRAIN_ENDS = "training finished in "
MODEL_WRITTEN = re.compile(r"^model written to .* in ([0-9.]+) s")


@dataclass(frozen=True)
class Phases:
    """Seconds per phase; ``train_data`` and ``model_writing`` are the parts named inside two of them."""

    install: float
    fetch: float
    train_data: float
    training: float
    evaluation: float
    model_writing: float

    @property
    def data(self) -> float:
        return self.fetch + self.train_data

    @property
    def total(self) -> float:
        return self.install + self.data + self.training + self.evaluation


def split_train_log(log: Path, install: float, fetch: float, train: float) -> Phases:
    """Split the `train` program's wall time ``train`` (seconds) by the timestamps of its log."""
    first: dict[str, datetime] = {}
    model_writing = 0.0
    for text in log.read_text(encoding="utf-8").splitlines():
        match = LINE.match(text)
        if match is None:
            continue  # a traceback's or a library's own continuation line
        stamp, message = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f"), match[2]
        for marker in (DATA_STARTS, DATA_ENDS, LOOP_ENDS, TRAIN_ENDS):
            if message.startswith(marker):
                first.setdefault(marker, stamp)
        if written := MODEL_WRITTEN.match(message):
            model_writing = float(written[1])
    missing = [marker.strip() for marker in (DATA_STARTS, DATA_ENDS, LOOP_ENDS, TRAIN_ENDS) if marker not in first]
    if missing:
        raise ValueError(f"{log}: no line starting {', '.join(repr(m) for m in missing)}: the log of a job that "
                         f"did not finish, or of another program")
    train_data = (first[DATA_ENDS] - first[DATA_STARTS]).total_seconds()
    evaluation = (first[TRAIN_ENDS] - first[LOOP_ENDS]).total_seconds()
    if train < train_data + evaluation:
        raise ValueError(f"{log}: spans more than the {train:.0f} s the train program ran: the log of another run")
    return Phases(install, fetch, train_data, train - train_data - evaluation, evaluation, model_writing)


def report(phases: Phases) -> str:
    rows = [
        ("install", phases.install, "albert-ner and its runtime dependencies in .venv-job"),
        ("data", phases.data, f"fetching MSRA {phases.fetch:.0f} s; reading and encoding it in train "
                              f"{phases.train_data:.0f} s"),
        ("training", phases.training, "start-up, model build, the loop with its per-epoch validation passes"),
        ("evaluation", phases.evaluation, f"final validation pass, test-set prediction, model and reports "
                                          f"(writing the model {phases.model_writing:.0f} s)"),
        ("total", phases.total, ""),
    ]
    return "\n".join(f"  {name:<11}{seconds:>7.0f} s  {what}".rstrip() for name, seconds, what in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("log", type=Path, help="the run's output/data/training.log")
    parser.add_argument("--install", type=float, required=True, help="seconds the install took")
    parser.add_argument("--fetch", type=float, required=True, help="seconds fetching the corpus took")
    parser.add_argument("--train", type=float, required=True, help="seconds the train program ran")
    args = parser.parse_args()
    try:
        phases = split_train_log(args.log, args.install, args.fetch, args.train)
    except (OSError, ValueError) as error:
        parser.exit(1, f"job_phases: {error}\n")
    print("wall time per phase:")
    print(report(phases))


if __name__ == "__main__":
    main()
