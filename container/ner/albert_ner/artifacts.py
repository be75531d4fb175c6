"""What a finished job leaves behind in ``model/`` and ``output/data`` (report.html aside: report_page.py).

SageMaker packs ``model/`` into model.tar.gz (what serving loads) and ``output/data`` into output.tar.gz
(what people read); the reports go to both. Every file is written atomically (files.py).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from albert_ner.evaluation import EvaluatedSplit, write_report
from albert_ner.export import export_saved_model
from albert_ner.files import write_text_atomically
from albert_ner.model_directory import TEST_REPORT, VALIDATION_REPORT
from albert_ner.prediction import Predictor
from albert_ner.runtimes.onnx_export import export_onnx
from albert_ner.sentences import Entity, Sentence

log = logging.getLogger("albert_ner.training")


@dataclass(frozen=True)
class JobOutputs:
    """Where a job's results go: the model directory, ``output/data``, and TensorBoard's events."""

    model_dir: Path
    output_data_dir: Path
    tensorboard_dir: Path


def write_artifacts(outputs: JobOutputs, predictor: Predictor, evaluated: Sequence[EvaluatedSplit],
                    onnx_export: str = "off", training: Sequence[Sentence] = ()) -> None:
    """The model directory (weights, config, vocabulary, SavedModel, and the ONNX copies unless
    ``onnx_export`` is off), each evaluated split's report in both ``model/`` and ``output/data``, the test
    predictions and a copy of the TensorBoard events. The ONNX copies are checked on the validation split;
    ``training`` sentences calibrate static quantization."""
    started = time.perf_counter()
    earlier = _entries(outputs.model_dir)
    reports = {split.name: split for split in evaluated}
    predictor.save(outputs.model_dir)
    exporting = time.perf_counter()
    export_saved_model(predictor, outputs.model_dir)
    done = time.perf_counter()
    log.info("model written to %s in %.1f s (SavedModel export %.1f s)", outputs.model_dir, done - started,
             done - exporting)
    if onnx_export != "off":
        validation = reports["validation"].sentences if "validation" in reports else []
        try:
            export_onnx(predictor, outputs.model_dir, validation, training if onnx_export == "static" else (),
                        onnx_export)
        except Exception as error:  # noqa: BLE001 - a model that does not convert still serves on TensorFlow
            log.warning("no ONNX copies: the conversion failed (%s: %s); the model serves on TensorFlow",
                        type(error).__name__, error)
    for directory in (outputs.model_dir, outputs.output_data_dir):
        write_report(reports["validation"].report, directory, VALIDATION_REPORT)
        if "test" in reports:
            write_report(reports["test"].report, directory, TEST_REPORT)
    remove_stale(outputs.model_dir, earlier)
    if "test" in reports and reports["test"].sentences:
        write_predictions(reports["test"].sentences, reports["test"].predicted,
                          outputs.output_data_dir / "test_predictions.jsonl")
    if outputs.tensorboard_dir.is_dir():
        shutil.copytree(outputs.tensorboard_dir, outputs.output_data_dir / "tensorboard", dirs_exist_ok=True)


def _entries(directory: Path) -> dict[str, tuple[int, int]]:
    """Each entry of ``directory`` with its (device, inode): every file the job writes is a new one, renamed
    into place (files.py), so an entry whose inode survives the writing was not written by this run."""
    if not directory.is_dir():
        return {}
    return {path.name: (path.lstat().st_dev, path.lstat().st_ino) for path in directory.iterdir()}


def remove_stale(model_dir: Path, earlier: dict[str, tuple[int, int]]) -> None:
    """Remove what an earlier run left in ``model_dir`` and this one did not write, saying so.

    The job owns the model directory's layout: a stale ``calibration.json`` or SavedModel would otherwise be
    served with the new weights (SageMaker starts every job with an empty ``/opt/ml/model``; a reused local
    tree does not).
    """
    now = _entries(model_dir)
    for name, identity in sorted(earlier.items()):
        if now.get(name) == identity:
            path = model_dir / name
            log.warning("removed %s from the model directory: an earlier run left it, and this run did not write "
                        "it", path)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def write_predictions(sentences: Sequence[Sentence], predicted: Sequence[Sequence[Entity]], path: Path) -> None:
    """One JSON line per sentence: its text, gold entities and predicted ones, as ``[start, end, type]``."""
    lines = []
    for sentence, entities in zip(sentences, predicted, strict=True):
        lines.append(json.dumps({
            "text": "".join(sentence.tokens),
            "entities": [list(entity) for entity in sentence.entities],
            "predicted": [list(entity) for entity in entities],
        }, ensure_ascii=False))
    write_text_atomically(path, "\n".join(lines) + "\n")
