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
from pathlib import Path

from albert_ner.data import Sentence
from albert_ner.evaluation import EvaluationReport, write_report
from albert_ner.export import export_saved_model
from albert_ner.files import write_text_atomically
from albert_ner.prediction import Predictor
from albert_ner.tag_schemes import Entity

log = logging.getLogger("albert_ner.training")


def write_artifacts(model_dir: Path, output_data_dir: Path, tensorboard_dir: Path, predictor: Predictor,
                    validation: EvaluationReport, test: EvaluationReport | None,
                    test_sentences: Sequence[Sentence] | None,
                    test_predicted: Sequence[Sequence[Entity]] | None) -> None:
    """The model directory (weights, config, vocabulary, SavedModel), the reports in both ``model/`` and
    ``output/data``, the test predictions and a copy of the TensorBoard events."""
    started = time.perf_counter()
    predictor.save(model_dir)
    exporting = time.perf_counter()
    export_saved_model(predictor, model_dir)
    done = time.perf_counter()
    log.info("model written to %s in %.1f s (SavedModel export %.1f s)", model_dir, done - started,
             done - exporting)
    for directory in (model_dir, output_data_dir):
        write_report(validation, directory, "validation_report")
        if test is not None:
            write_report(test, directory, "test_report")
    if test_sentences and test_predicted is not None:
        write_predictions(test_sentences, test_predicted, output_data_dir / "test_predictions.jsonl")
    if tensorboard_dir.is_dir():
        shutil.copytree(tensorboard_dir, output_data_dir / "tensorboard", dirs_exist_ok=True)


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
