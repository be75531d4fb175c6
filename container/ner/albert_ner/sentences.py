"""The data types everything between the readers and the model's output works on: entity spans and
labelled sentences.

This module imports nothing of the project, so that windows, batching, prediction and evaluation can use
a sentence without pulling in the format readers or the tag schemes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class Entity(NamedTuple):
    """A typed span of token offsets, ``end`` exclusive."""

    start: int
    end: int
    type: str


@dataclass(frozen=True)
class Sentence:
    """One labelled sentence: its tokens (one character each for Chinese) and entity spans over them."""

    tokens: tuple[str, ...]
    entities: tuple[Entity, ...]
    source: str = ""  # "path:line" where it starts, for messages
    # Per entity, how sure the system that labelled it was (a teacher's JSON Lines "score"); None: not given.
    entity_scores: tuple[float | None, ...] | None = None


@dataclass(frozen=True)
class WeightedSentences:
    """Sentences trained on beside the gold ones (a teacher's, the model's own pseudo-labels), with each
    one's weight in the loss (a gold sentence weighs 1)."""

    sentences: list[Sentence]
    weights: list[float]

    def __add__(self, other: WeightedSentences) -> WeightedSentences:
        return WeightedSentences(self.sentences + other.sentences, self.weights + other.weights)


def lowest_score(sentence: Sentence) -> float:
    """The lowest of the sentence's entity scores (1 when none is given): a sentence is as sure as its
    least sure entity."""
    return min((score for score in sentence.entity_scores or () if score is not None), default=1.0)
