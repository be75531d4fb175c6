"""Retraining from Label Studio: on the training trigger, the project's annotations become a new model,
trained by the project's own ``train`` in a separate process on a temporary ``/opt/ml`` tree and
warm-started from the served model (the ``model`` channel, :mod:`albert_ner.warm_start`); every worker then
serves the new model, and a failed retrain leaves the served one in place.

What a server's workers share lives in its state directory (``ALBERT_NER_STATE_DIR``; by default one that
``serve`` makes for its lifetime)::

    training.lock     held while a retrain runs (by the worker's thread and by the ``train`` process), so a
                      server runs one at a time whichever worker was asked
    status.json       the last retrain: state (running, succeeded, failed), project, times, the ``train``
                      process's pid, model version, the failure's reason; /health shows it, and shows a
                      "running" retrain whose lock nobody holds as interrupted (its worker was killed)
    current           {"model_dir", "origin"}: the model to serve, once a retrain has replaced the first one,
                      and the version of the model the retrains grew from. A server started on another
                      model ignores it, so a kept state directory never brings back an older lineage
    models/VERSION/   the retrained models, the newest few (KEPT_MODELS)
    run/              the last retrain's /opt/ml tree (its log is run/training.log, its failure output/failure)
    annotations.json  annotation events counted per project since its last retrain

The training data is the project's JSON export (every annotated task), which the job reads like any Label
Studio export. The ``train`` process gets the server's environment without ``LABEL_STUDIO_API_KEY`` and
without the SageMaker variables that would point it at the served model's directory. It is stopped after
``ALBERT_NER_RETRAIN_TIMEOUT`` seconds.
"""

from __future__ import annotations

import copy
import datetime
import fcntl
import json
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from albert_ner.errors import AlbertNerError
from albert_ner.files import locked, write_text_atomically
from albert_ner.label_studio.client import KEY_VARIABLE, LabelStudioClient, LabelStudioError
from albert_ner.model_directory import model_version
from albert_ner.serving import child_process
from albert_ner.warm_start import MODEL_CHANNEL

log = logging.getLogger("albert_ner.serving")

RETRAINING_NEEDS = ("retraining needs LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY, to fetch the project's "
                    "annotations")
#: Variables the ``train`` process must not inherit: the secrets, and the SageMaker ones (``SM_MODEL_DIR``,
#: ``SM_CHANNEL_*``...) that would send it to other inputs or write its model over the served one.
_WITHHELD = (KEY_VARIABLE, "BASIC_AUTH_PASS", "SAGEMAKER_BASE_DIR")
_WITHHELD_PREFIX = "SM_"
#: Retrained models kept in the state directory: the one in place and the two before it, which a worker
#: that has not switched yet may still be serving (and warm-starting from).
KEPT_MODELS = 3


class Retrainer:
    """Starts retrains (one at a time per state directory), records how they went, and says which model
    directory the workers should serve."""

    def __init__(self, state_dir: Path, client: LabelStudioClient | None, hyperparameters: Mapping[str, Any],
                 origin: Path, every: int = 0, mapping: Mapping[str, str] | None = None, timeout: float = 0,
                 environ: Mapping[str, str] | None = None):
        self.state_dir = state_dir
        self.client = client
        self._origin = origin  # the model `serve` was started on
        # The labelling config's labels back to the model's entity types (ALBERT_NER_LABEL_MAPPING reversed).
        self.types_of_labels = {label: entity_type for entity_type, label in (mapping or {}).items()}
        self.hyperparameters = dict(hyperparameters)
        self.every = every
        self.timeout = timeout or None  # 0: no limit
        self._environ = os.environ if environ is None else environ
        self._lock_path = state_dir / "training.lock"
        state_dir.mkdir(parents=True, exist_ok=True)

    @cached_property
    def origin(self) -> str:
        """The version of the model this server was started on: the lineage its retrains belong to."""
        return model_version(self._origin)

    # ------------------------------------------------------------------ what the workers read
    def status(self) -> dict[str, Any] | None:
        """The last retrain's status.json, or None before the first. A "running" retrain whose lock is free
        ended without reporting (the worker running it was killed), and says so."""
        try:
            status = json.loads((self.state_dir / "status.json").read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if isinstance(status, dict) and status.get("state") == "running" and not self._retrain_runs():
            status = {**status, "state": "interrupted",
                      "reason": "the retrain ended without reporting: the server worker that ran it stopped, and "
                                "its model was not put in place; start training again"}
        return status

    def current_model_dir(self) -> Path | None:
        """The model directory a retrain put in place, or None while the first model is still the one (or
        the state directory's retrains grew from another model than this server's)."""
        try:
            current = json.loads((self.state_dir / "current").read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        try:
            origin = self.origin
        except (OSError, AlbertNerError):  # the server's own model directory is unreadable: its loader says why
            return None
        if not isinstance(current, dict) or current.get("origin") != origin or not current.get("model_dir"):
            return None
        return Path(current["model_dir"])

    # ------------------------------------------------------------------ triggers
    def start(self, project: int, served: Path) -> bool:
        """Retrain from ``project``'s annotations, warm-started from the model in ``served``, in the
        background; False if a retrain is running already."""
        if self.client is None:
            raise LabelStudioError(RETRAINING_NEEDS)
        lock = open(self._lock_path, "a+b")  # noqa: SIM115 - held by the thread (and train) until they end
        if not _take(lock, fcntl.LOCK_EX, attempts=3):
            lock.close()
            return False
        self._count(project, reset=True)
        self._write_status({"state": "running", "project": project, "started": _now()})
        threading.Thread(target=self._retrain, args=(project, served, lock), name="retrain", daemon=True).start()
        return True

    def annotation_event(self, project: int, served: Path, annotations: int = 1) -> tuple[int, bool]:
        """Count ``annotations`` new annotations of ``project``; with ``every`` set, retrain once that many
        have come in since the last retrain. Returns the count and whether a retrain started."""
        count = self._count(project, added=annotations)
        if self.every and count >= self.every and self.client is not None:
            return count, self.start(project, served)
        return count, False

    def _retrain_runs(self) -> bool:
        """Whether someone holds the training lock (a shared lock is refused while it is held)."""
        with open(self._lock_path, "a+b") as lock:
            if _take(lock, fcntl.LOCK_SH):
                fcntl.flock(lock, fcntl.LOCK_UN)
                return False
            return True

    # ------------------------------------------------------------------ the retrain itself
    def _retrain(self, project: int, served: Path, lock: Any) -> None:
        try:
            version, sentences = self._train(project, served, lock)
        except Exception as error:  # noqa: BLE001 - a failed retrain is reported, and the served model stays
            # /health shows the reason: an unexpected error only by its type (its message could hold anything).
            known = isinstance(error, (LabelStudioError, RetrainFailed))
            reason = str(error) if known else f"{type(error).__name__}; the details are in the server's log"
            log.error("retraining from Label Studio project %s failed: %s", project, reason, exc_info=not known)
            outcome: dict[str, Any] = {"state": "failed", "reason": reason}
        else:
            log.info("retrained from Label Studio project %s: model %s, %d annotated tasks", project, version,
                     sentences)
            outcome = {"state": "succeeded", "model_version": version, "annotated_tasks": sentences}
        try:
            self._write_status({**(self.status() or {}), **outcome, "finished": _now()})
        finally:
            lock.close()

    def _train(self, project: int, served: Path, lock: Any) -> tuple[str, int]:
        assert self.client is not None
        tasks = [self._with_entity_types(task) for task in self.client.export(project) if task.get("annotations")]
        if not tasks:
            raise RetrainFailed(f"Label Studio project {project} has no annotated tasks to train on")
        run = self.state_dir / "run"
        shutil.rmtree(run, ignore_errors=True)
        training = run / "input" / "data" / "training"
        training.mkdir(parents=True)
        write_text_atomically(training / "annotations.json", json.dumps(tasks, ensure_ascii=False))
        (run / "input" / "data" / MODEL_CHANNEL).symlink_to(served.resolve(), target_is_directory=True)
        config = run / "input" / "config"
        config.mkdir(parents=True)
        write_text_atomically(config / "hyperparameters.json", json.dumps(self.hyperparameters, ensure_ascii=False))
        environ = {key: value for key, value in self._environ.items()
                   if key not in _WITHHELD and not key.startswith(_WITHHELD_PREFIX)}
        log.info("retraining from Label Studio project %s: %d annotated tasks, warm-started from %s", project,
                 len(tasks), served)
        with open(run / "training.log", "wb") as output:
            # train holds the lock too (pass_fds), and is stopped if this worker dies (child_process): no
            # other retrain starts beside it, and none runs on with nobody to put its model in place.
            child = subprocess.Popen(child_process.command("train", "--base-dir", str(run)), env=environ,
                                     stdout=output, stderr=subprocess.STDOUT, pass_fds=(lock.fileno(),))
            try:
                self._write_status({**(self.status() or {}), "pid": child.pid})
                returncode = child.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                raise RetrainFailed(f"train ran past ALBERT_NER_RETRAIN_TIMEOUT ({self.timeout} s) and was stopped "
                                    f"(the log: {run / 'training.log'})") from None
            finally:
                if child.poll() is None:
                    child.kill()
                    child.wait()
        if returncode != 0:
            failure = run / "output" / "failure"
            reason = (failure.read_text(encoding="utf-8").splitlines() or ["(empty)"])[0] if failure.exists() \
                else f"train exited with status {returncode}"
            raise RetrainFailed(f"train failed: {reason} (the log: {run / 'training.log'})")
        version = model_version(run / "model")
        models = self.state_dir / "models"
        destination = models / version
        if not destination.is_dir():  # the same version is the same files: the one in place stays (it may be served)
            models.mkdir(parents=True, exist_ok=True)
            shutil.move(run / "model", destination)
        os.utime(destination)  # the newest, for the pruning below
        current = {"model_dir": str(destination), "origin": self.origin}
        write_text_atomically(self.state_dir / "current", json.dumps(current, ensure_ascii=False) + "\n")
        self._prune(models, keep={destination, served.resolve()})
        return version, len(tasks)

    @staticmethod
    def _prune(models: Path, keep: set[Path]) -> None:
        """Remove all but the KEPT_MODELS newest retrained models (and those in ``keep``)."""
        retrained = sorted((path for path in models.iterdir() if path.is_dir()), key=lambda path: path.stat().st_mtime,
                           reverse=True)
        for path in retrained[KEPT_MODELS:]:
            if path.resolve() not in keep:
                shutil.rmtree(path, ignore_errors=True)
                log.info("removed the retrained model %s (the %d newest are kept)", path.name, KEPT_MODELS)

    def _with_entity_types(self, task: dict[str, Any]) -> dict[str, Any]:
        """``task`` with its regions' labels named as the model's entity types, which is what it trains on."""
        if not self.types_of_labels:
            return task
        task = copy.deepcopy(task)
        regions = [region for annotation in task["annotations"] if isinstance(annotation, dict)
                   for region in annotation.get("result") or [] if isinstance(region, dict)]
        for region in regions:  # anything malformed is left for the job's reader to name
            value = region.get("value")
            if isinstance(value, dict) and isinstance(value.get("labels"), list):
                value["labels"] = [self.types_of_labels.get(label, label) for label in value["labels"]]
        return task

    # ------------------------------------------------------------------ shared files
    def _write_status(self, status: dict[str, Any]) -> None:
        write_text_atomically(self.state_dir / "status.json", json.dumps(status, ensure_ascii=False) + "\n")

    def _count(self, project: int, added: int = 0, reset: bool = False) -> int:
        """Add ``added`` to ``project``'s annotation count (or reset it), under a lock all workers take."""
        with locked(self.state_dir / "annotations.lock", "the annotation count"):
            path = self.state_dir / "annotations.json"
            try:
                counts = json.loads(path.read_text(encoding="utf-8"))
            except (FileNotFoundError, json.JSONDecodeError):
                counts = {}
            counts[str(project)] = 0 if reset else int(counts.get(str(project), 0)) + added
            write_text_atomically(path, json.dumps(counts) + "\n")
            return counts[str(project)]


class RetrainFailed(Exception):
    """A retrain that could not produce a model; the message says why."""


def _take(lock: Any, kind: int, attempts: int = 1) -> bool:
    """Take the flock ``kind`` on ``lock`` without waiting for a holder; with ``attempts`` > 1, through the
    instant another worker's :meth:`Retrainer.status` holds it shared to look."""
    for attempt in range(attempts):
        try:
            fcntl.flock(lock, kind | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if attempt + 1 < attempts:
                time.sleep(0.05)
    return False


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
