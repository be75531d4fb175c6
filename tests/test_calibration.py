"""Reliability bins and the expected calibration error, on outcomes whose answer is worked out by hand."""

from __future__ import annotations

import math

import pytest

from albert_ner.calibration import entity_outcomes, reliability
from albert_ner.confidence import ScoredPrediction
from albert_ner.data import Sentence
from albert_ner.tag_schemes import Entity


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
