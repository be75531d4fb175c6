"""The six error outcomes, on gold and predicted entities built by hand, and their agreement with seqeval."""

from __future__ import annotations

import pytest

from albert_ner.error_analysis import NO_ENTITY, OUTCOMES, analyse_errors
from albert_ner.evaluation import evaluate
from albert_ner.sentences import Entity as E
from albert_ner.sentences import Sentence


def _sentence(text: str, *entities: E) -> Sentence:
    return Sentence(tuple(text), tuple(entities))


# One sentence per outcome (plus a correct one), so that each case is worked out on its own.
CASES = [
    # (text, gold, predicted, the outcome each gold entity has, then spurious predictions)
    ("张伟在北京工作。", [E(0, 2, "PER"), E(3, 5, "LOC")], [E(0, 2, "PER"), E(3, 5, "ORG")],
     ["correct", "wrong_type"]),
    ("清华大学很大。", [E(0, 4, "ORG")], [E(0, 2, "ORG")], ["wrong_boundary"]),
    ("上海市政府发文。", [E(0, 5, "ORG")], [E(0, 3, "LOC")], ["wrong_boundary_and_type"]),
    ("王芳来了。", [E(0, 2, "PER")], [], ["missed"]),
    ("今天很好。", [], [E(0, 2, "PER")], ["spurious"]),
]


def test_each_hand_built_case_gets_its_outcome() -> None:
    for text, gold, predicted, expected in CASES:
        breakdown = analyse_errors([_sentence(text, *gold)], [predicted])
        assert [outcome.kind for outcome in breakdown.sentences[0].outcomes] == expected, text


def test_counts_per_type_and_the_confusion_table() -> None:
    sentences = [_sentence(text, *gold) for text, gold, _, _ in CASES]
    breakdown = analyse_errors(sentences, [predicted for _, _, predicted, _ in CASES])
    assert breakdown.types == ["LOC", "ORG", "PER"]
    # Gold outcomes count under the gold type, a spurious entity under its predicted type.
    assert breakdown.counts["PER"] == {"correct": 1, "wrong_type": 0, "wrong_boundary": 0,
                                       "wrong_boundary_and_type": 0, "missed": 1, "spurious": 1}
    assert breakdown.counts["LOC"] == dict.fromkeys(OUTCOMES, 0) | {"wrong_type": 1}
    assert breakdown.counts["ORG"] == dict.fromkeys(OUTCOMES, 0) | {"wrong_boundary": 1,
                                                                    "wrong_boundary_and_type": 1}
    assert breakdown.confusion == {("PER", "PER"): 1, ("LOC", "ORG"): 1, ("ORG", "ORG"): 1, ("ORG", "LOC"): 1,
                                   ("PER", NO_ENTITY): 1, (NO_ENTITY, "PER"): 1}
    assert {kind: breakdown.total(kind) for kind in OUTCOMES} == dict.fromkeys(OUTCOMES, 1) | {"correct": 1}


def test_a_prediction_merging_two_names_pairs_with_the_better_one_and_the_other_is_missed() -> None:
    # 北京 (LOC) + 大学 (ORG) predicted as one ORG: the ORG pairs with the ORG gold entity (same type),
    # not with 北京, which comes first but has another type.
    sentence = _sentence("北京大学城", E(0, 2, "LOC"), E(2, 4, "ORG"))
    outcomes = analyse_errors([sentence], [[E(0, 5, "ORG")]]).sentences[0].outcomes
    assert [(outcome.kind, outcome.gold) for outcome in outcomes] == [
        ("missed", E(0, 2, "LOC")), ("wrong_boundary", E(2, 4, "ORG"))]
    # With equal types, the widest overlap wins: [1, 5) covers 3 of 大学城 and 1 of 北京.
    sentence = _sentence("北京大学城", E(0, 2, "LOC"), E(2, 5, "LOC"))
    outcomes = analyse_errors([sentence], [[E(1, 5, "LOC")]]).sentences[0].outcomes
    assert [outcome.kind for outcome in outcomes] == ["missed", "wrong_boundary"]


def test_every_gold_entity_has_one_outcome_and_every_prediction_is_paired_once_or_spurious() -> None:
    sentences = [_sentence("甲乙丙丁戊己庚辛", E(0, 2, "PER"), E(2, 3, "LOC"), E(4, 7, "ORG")),
                 _sentence("甲乙丙", E(0, 3, "LOC"))]
    predicted = [[E(0, 3, "PER"), E(3, 5, "ORG"), E(6, 8, "ORG")], [E(1, 2, "LOC"), E(2, 3, "LOC")]]
    breakdown = analyse_errors(sentences, predicted)
    gold_outcomes = sum(breakdown.total(kind) for kind in OUTCOMES if kind != "spurious")
    predicted_outcomes = sum(breakdown.total(kind) for kind in OUTCOMES if kind != "missed")
    assert gold_outcomes == 4 and predicted_outcomes == 5
    assert sum(breakdown.confusion.values()) == len(breakdown.sentences[0].outcomes) + len(
        breakdown.sentences[1].outcomes)


def test_correct_is_seqevals_strict_true_positives() -> None:
    sentences = [_sentence(text, *gold) for text, gold, _, _ in CASES]
    predicted = [predicted for _, _, predicted, _ in CASES]
    report, breakdown = evaluate(sentences, predicted), analyse_errors(sentences, predicted)
    for entity_type, scores in report.per_type.items():
        assert breakdown.counts[entity_type]["correct"] == pytest.approx(scores.recall * scores.support)
        gold = sum(breakdown.counts[entity_type][kind] for kind in OUTCOMES if kind != "spurious")
        assert gold == scores.support


def test_characters_whose_tags_differ_are_marked() -> None:
    # Gold ORG [0, 4) tagged B I I E; predicted ORG [0, 2) tagged B E: characters 1, 2, 3 differ.
    outcome = analyse_errors([_sentence("清华大学很大。", E(0, 4, "ORG"))], [[E(0, 2, "ORG")]]).sentences[0]
    assert outcome.differing == frozenset({1, 2, 3})


def test_worst_sentences_come_by_error_count_then_position_and_exclude_perfect_ones() -> None:
    sentences = [_sentence(text, *gold) for text, gold, _, _ in CASES]
    predicted = [predicted for _, _, predicted, _ in CASES]
    predicted[1] = [E(0, 2, "ORG"), E(4, 6, "PER")]  # two errors now
    worst = analyse_errors(sentences, predicted).worst_sentences(3)
    assert [outcome.index for outcome in worst] == [1, 0, 2]
    assert [outcome.errors for outcome in worst] == [2, 1, 1]
    perfect = analyse_errors([_sentence("张伟", E(0, 2, "PER"))], [[E(0, 2, "PER")]])
    assert perfect.worst_sentences(50) == []


def test_mismatched_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="2 sentences but 1 predictions"):
        analyse_errors([_sentence("甲"), _sentence("乙")], [[]])
