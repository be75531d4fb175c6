"""Reliability bins and the expected calibration error, on outcomes whose answer is worked out by hand."""

from __future__ import annotations

import math

import pytest

from albert_ner.calibration import entity_outcomes, reliability
from albert_ner.confidence import ScoredPrediction
from albert_ner.sentences import Entity, Sentence


def test_bins_and_ece_by_hand() -> None:
    # bin [0.2, 0.3): two entities, mean 0.25, one right; bin [0.9, 1.0]: three, mean 0.95 (1.0 included), all right
    outcomes = [(0.2, True), (0.3 - 1e-9, False), (0.9, True), (0.95, True), (1.0, True)]
    result = reliability(outcomes, bins=10)
    assert [b.count for b in result.bins] == [0, 0, 2, 0, 0, 0, 0, 0, 0, 3]
    assert result.bins[2].precision == 0.5 and result.bins[9].precision == 1.0
    assert math.isclose(result.bins[9].mean_score, 0.95)
    expected = 2 / 5 * abs(0.5 - (0.2 + 0.3 - 1e-9) / 2) + 3 / 5 * abs(1.0 - 0.95)
    assert math.isclose(result.ece, expected)
    assert result.entities == 5 and "| [0.9, 1.0] | 3 | 0.950 | 1.000 |" in result.table()
    assert math.isnan(result.bins[0].precision) and result.to_dict()["bins"][0]["precision"] is None


def test_perfectly_calibrated_scores_have_zero_ece() -> None:
    outcomes = [(0.75, True)] * 3 + [(0.75, False)] + [(0.25, True)] + [(0.25, False)] * 3
    assert reliability(outcomes, bins=4).ece == 0.0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        reliability([(1.5, True)])


def test_entity_outcomes_count_exact_span_and_type_only() -> None:
    gold = [Sentence(tuple("张三在北京"), (Entity(0, 2, "PER"), Entity(3, 5, "LOC")))]
    predicted = [ScoredPrediction([], [Entity(0, 2, "PER"), Entity(3, 5, "ORG"), Entity(2, 5, "LOC")],
                                  [0.9, 0.6, 0.3], 0.2)]
    assert entity_outcomes(gold, predicted) == [(0.9, True), (0.6, False), (0.3, False)]


def test_fitted_temperature_is_saved_with_the_model_and_applied_everywhere(tmp_path) -> None:
    """Fit on validation data, save calibration.json; the loaded Predictor and the re-exported SavedModel
    score at that temperature, and no prediction changes."""
    import json

    import tensorflow as tf

    from albert_ner.cli import main
    from albert_ner.export import export_saved_model
    from albert_ner.model_directory import CALIBRATION_FILE
    from albert_ner.prediction import Predictor
    from conftest import SAMPLE
    from test_prediction import random_predictor

    predictor = random_predictor(["张三在北京大学工作。", "李四去了上海。"], seed=7)
    model_dir = tmp_path / "model"
    predictor.save(model_dir)
    export_saved_model(predictor, model_dir)
    assert main(["calibrate", str(model_dir), str(SAMPLE / "validation.jsonl")]) == 0
    report = json.loads((model_dir / CALIBRATION_FILE).read_text(encoding="utf-8"))
    assert 0.1 <= report["temperature"] <= 10 and report["temperature"] != 1.0
    assert report["validation_log_loss_after"] <= report["validation_log_loss_before"]

    loaded = Predictor.load(model_dir)
    assert loaded.temperature == report["temperature"]
    lines = (SAMPLE / "validation.jsonl").read_text(encoding="utf-8").splitlines()
    texts = [json.loads(line)["text"] for line in lines[:20]]
    before, after = predictor.predict([list(t) for t in texts]), loaded.predict([list(t) for t in texts])
    assert [p.entities for p in before] == [p.entities for p in after]
    assert [p.tags for p in before] == [p.tags for p in after]
    before_scores = [score for p in before for score in p.scores]
    after_scores = [score for p in after for score in p.scores]
    assert before_scores and before_scores != after_scores
    signature = tf.saved_model.load(str(model_dir / "1")).signatures["serving_default"]
    exported = signature(text=tf.constant([t.encode() for t in texts]))
    for row, prediction in enumerate(after):
        count = int(exported["entity_counts"][row])
        assert count == len(prediction.scores)
        assert all(abs(a - b) < 1e-5 for a, b in zip(exported["entity_scores"][row, :count].numpy(),
                                                        prediction.scores, strict=True))
        assert abs(float(exported["sentence_scores"][row]) - prediction.sentence_score) < 1e-5
