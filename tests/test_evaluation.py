"""Strict entity-level scores, checked against counts worked out by hand."""

from __future__ import annotations

import json

import pytest

from albert_ner.evaluation import evaluate, write_report
from albert_ner.sentences import Entity as E
from albert_ner.sentences import Sentence


def _sentences(lengths: list[int], gold: list[list[E]]) -> list[Sentence]:
    return [Sentence(tuple("字" * length), tuple(entities)) for length, entities in zip(lengths, gold, strict=True)]


def test_strict_scores_per_type_and_averages() -> None:
    gold = [[E(0, 2, "PER"), E(3, 5, "LOC")], [E(0, 4, "ORG")], [E(1, 2, "PER")]]
    predicted = [[E(0, 2, "PER"), E(3, 6, "LOC")],  # LOC boundary wrong: a miss and a false alarm
                 [E(0, 4, "ORG")],
                 [E(1, 2, "LOC")]]                   # right span, wrong type
    report = evaluate(_sentences([6, 4, 3], gold), predicted)
    # PER: tp 1, fp 0, fn 1; LOC: tp 0, fp 2, fn 1; ORG: tp 1.
    assert report.per_type["PER"].precision == 1.0 and report.per_type["PER"].recall == 0.5
    assert report.per_type["LOC"].f1 == 0.0 and report.per_type["LOC"].support == 1
    assert report.per_type["ORG"].f1 == 1.0
    assert report.micro.precision == pytest.approx(2 / 4) and report.micro.recall == pytest.approx(2 / 4)
    assert report.macro.f1 == pytest.approx((2 / 3 + 0 + 1) / 3)
    assert report.micro.support == 4 and report.sentences == 3


def test_token_level_macro_f1_is_reported_separately() -> None:
    gold = [[E(0, 3, "ORG")]]
    report = evaluate(_sentences([3], gold), [[E(0, 2, "ORG")]])
    assert report.f1 == 0.0  # strict: the entity is wrong
    # Tokens: gold B I E, predicted B E O -> B right; I and E wrong: macro over {B,I,E}-ORG = 1/3.
    assert report.token_macro_f1 == pytest.approx(1 / 3)


def test_reports_are_written_as_json_and_table(tmp_path) -> None:
    report = evaluate(_sentences([2], [[E(0, 2, "人名")]]), [[E(0, 2, "人名")]])
    write_report(report, tmp_path, "test_report")
    saved = json.loads((tmp_path / "test_report.json").read_text(encoding="utf-8"))
    assert saved["entity_level_strict"]["per_type"]["人名"]["f1"] == 1.0
    table = (tmp_path / "test_report.txt").read_text(encoding="utf-8")
    assert "人名" in table and "micro avg" in table and "token-level macro F1" in table


def test_mismatched_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="2 sentences but 1 predictions"):
        evaluate(_sentences([1, 2], [[], []]), [[]])
