"""Where a tagger goes wrong: every gold and predicted entity sorted into one of six outcomes.

Strict F1 says how often an entity is exactly right; it does not say whether the misses are boundary
slips, type confusions, or names never found. The six outcomes are the usual ones of entity-level error
analysis (Chinchor and Sundheim's MUC categories as SemEval 2013 task 9 and ``nervaluate`` name them):

- ``correct``: same start, end and type (what seqeval's strict mode counts as a true positive);
- ``wrong_type``: same span, another type;
- ``wrong_boundary``: an overlapping span of the same type;
- ``wrong_boundary_and_type``: an overlapping span of another type;
- ``missed``: a gold entity no prediction overlaps;
- ``spurious``: a prediction that overlaps no gold entity.

Pairs are one to one, so each gold entity has exactly one of the first five outcomes and each predicted
entity is either paired with one gold entity or spurious: a prediction that merges two gold names pairs
with one of them (the same type, then the widest overlap, first) and the other one is missed. ``nervaluate``
reports counts per matching schema but not this six-way split per pair, so the pairing is written here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from albert_ner.sentences import Entity, Sentence
from albert_ner.tag_schemes import entities_to_tags

OUTCOMES = ("correct", "wrong_type", "wrong_boundary", "wrong_boundary_and_type", "missed", "spurious")
#: The row and column of the confusion table that stand for "no entity there".
NO_ENTITY = ""


@dataclass(frozen=True)
class Outcome:
    """One gold entity, one prediction, or a pair of them, with what happened; positions are characters."""

    kind: str
    gold: Entity | None
    predicted: Entity | None

    @property
    def entity_type(self) -> str:
        """The type the outcome counts under: the gold one, or the predicted one for a spurious entity."""
        entity = self.gold or self.predicted
        assert entity is not None
        return entity.type


@dataclass(frozen=True)
class SentenceOutcomes:
    """A sentence's outcomes, and the characters whose gold and predicted tags differ."""

    index: int
    sentence: Sentence
    predicted: tuple[Entity, ...]
    outcomes: tuple[Outcome, ...]
    differing: frozenset[int]

    @property
    def errors(self) -> int:
        return sum(outcome.kind != "correct" for outcome in self.outcomes)


@dataclass
class ErrorBreakdown:
    """Counts of each outcome per entity type, the confusion between types, and every sentence's outcomes."""

    types: list[str]
    counts: dict[str, dict[str, int]]  # type -> outcome -> count
    confusion: dict[tuple[str, str], int]  # (gold type or NO_ENTITY, predicted type or NO_ENTITY) -> count
    sentences: list[SentenceOutcomes] = field(repr=False)

    def total(self, kind: str) -> int:
        return sum(counts[kind] for counts in self.counts.values())

    def worst_sentences(self, limit: int) -> list[SentenceOutcomes]:
        """The ``limit`` sentences with the most errors (first in the data among equals); none without errors."""
        erring = [outcome for outcome in self.sentences if outcome.errors]
        return sorted(erring, key=lambda outcome: (-outcome.errors, outcome.index))[:limit]


def analyse_errors(sentences: Sequence[Sentence], predicted: Sequence[Sequence[Entity]]) -> ErrorBreakdown:
    """Sort the gold and predicted entities of every sentence into :data:`OUTCOMES`."""
    if len(sentences) != len(predicted):
        raise ValueError(f"{len(sentences)} sentences but {len(predicted)} predictions")
    per_sentence = [_sentence_outcomes(index, sentence, tuple(entities))
                    for index, (sentence, entities) in enumerate(zip(sentences, predicted, strict=True))]
    types = sorted({outcome.entity_type for sentence in per_sentence for outcome in sentence.outcomes}
                   | {entity.type for sentence in sentences for entity in sentence.entities})
    counts = {entity_type: dict.fromkeys(OUTCOMES, 0) for entity_type in types}
    confusion: dict[tuple[str, str], int] = {}
    for sentence in per_sentence:
        for outcome in sentence.outcomes:
            counts[outcome.entity_type][outcome.kind] += 1
            cell = (outcome.gold.type if outcome.gold else NO_ENTITY,
                    outcome.predicted.type if outcome.predicted else NO_ENTITY)
            confusion[cell] = confusion.get(cell, 0) + 1
    return ErrorBreakdown(types, counts, confusion, per_sentence)


def _sentence_outcomes(index: int, sentence: Sentence, predicted: tuple[Entity, ...]) -> SentenceOutcomes:
    pairs = sorted(((gold, entity) for gold in sentence.entities for entity in predicted
                    if entity.start < gold.end and gold.start < entity.end), key=_preference)
    partners: dict[Entity, Entity] = {}
    for gold, entity in pairs:
        if gold not in partners and entity not in partners.values():
            partners[gold] = entity
    outcomes = []
    for gold in sorted(sentence.entities):
        partner = partners.get(gold)
        if partner is None:
            outcomes.append(Outcome("missed", gold, None))
            continue
        same_span = (partner.start, partner.end) == (gold.start, gold.end)
        kind = {(True, True): "correct", (True, False): "wrong_type", (False, True): "wrong_boundary",
                (False, False): "wrong_boundary_and_type"}[same_span, partner.type == gold.type]
        outcomes.append(Outcome(kind, gold, partner))
    paired = set(partners.values())
    outcomes += [Outcome("spurious", None, entity) for entity in predicted if entity not in paired]
    length = len(sentence.tokens)
    gold_tags = entities_to_tags(length, sentence.entities, "bioes")
    predicted_tags = entities_to_tags(length, predicted, "bioes")
    differing = frozenset(position for position, (gold_tag, predicted_tag)
                          in enumerate(zip(gold_tags, predicted_tags, strict=True)) if gold_tag != predicted_tag)
    return SentenceOutcomes(index, sentence, predicted, tuple(outcomes), differing)


def _preference(pair: tuple[Entity, Entity]) -> tuple[bool, bool, int, int, int]:
    """Pairs taken first: the same span, then the same type, then the widest overlap, then left to right."""
    gold, entity = pair
    overlap = min(entity.end, gold.end) - max(entity.start, gold.start)
    return ((entity.start, entity.end) != (gold.start, gold.end), entity.type != gold.type, -overlap,
            gold.start, entity.start)
