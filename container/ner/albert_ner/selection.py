"""Active learning: which unlabelled sentences to label next.

The uncertainty of a sentence is **one minus the probability of its best tagging** under the model
(least confidence, Settles & Craven 2008), :attr:`ScoredPrediction.sentence_score` from the CRF's
forward-backward pass. It is 0 when the model is certain of every character and approaches 1 when many
taggings compete. It grows with length (more characters, more ways to be wrong), which suits NER: longer
sentences hold more entities, so a label buys more; the budget is counted in sentences.

Sentences are ranked from most to least uncertain (ties keep input order). Empty and whitespace-only
lines, exact repeats of an earlier line, and sentences already in the labelled data are skipped (and
counted), since labelling them again teaches nothing.

The chosen sentences are written for the labelling tool by :mod:`albert_ner.labelling_tasks`: a Ground
Truth manifest, Label Studio tasks or doccano JSONL, pre-annotated with the model's entities if wanted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from albert_ner.confidence import ScoredPrediction
from albert_ner.prediction import Predictor


@dataclass(frozen=True)
class Candidate:
    """An unlabelled sentence, its position in the input (0-based), and the model's prediction for it."""

    text: str
    index: int
    prediction: ScoredPrediction

    @property
    def uncertainty(self) -> float:
        """One minus the probability of the best tagging."""
        return 1.0 - self.prediction.sentence_score


@dataclass
class Selection:
    """The chosen sentences, most uncertain first, and what was left out before ranking."""

    chosen: list[Candidate]
    candidates: int = 0
    skipped_empty: int = 0
    skipped_duplicates: int = 0
    skipped_labelled: int = 0

    def summary(self) -> str:
        chosen = [candidate.uncertainty for candidate in self.chosen]
        spread = f", uncertainty {min(chosen):.3f}-{max(chosen):.3f}" if chosen else ""
        return (f"selected {len(self.chosen)} of {self.candidates} candidate sentences{spread}; skipped "
                f"{self.skipped_empty} empty, {self.skipped_duplicates} duplicate, "
                f"{self.skipped_labelled} already labelled")


def select(predictor: Predictor, texts: Iterable[str], budget: int, labelled: Iterable[str] = (),
           chunk_size: int = 2048) -> Selection:
    """The ``budget`` most uncertain of ``texts`` (see the module docstring for the measure and the skips)."""
    if budget < 1:
        raise ValueError(f"budget must be a positive number of sentences, got {budget}")
    known = set(labelled)
    selection = Selection(chosen=[])
    pending: list[tuple[int, str]] = []
    ranked: list[Candidate] = []
    seen: set[str] = set()
    for index, text in enumerate(texts):
        if not text.strip():
            selection.skipped_empty += 1
        elif text in known:
            selection.skipped_labelled += 1
        elif text in seen:
            selection.skipped_duplicates += 1
        else:
            seen.add(text)
            pending.append((index, text))
        if len(pending) >= chunk_size:
            ranked += _score(predictor, pending)
            pending = []
    ranked += _score(predictor, pending)
    ranked.sort(key=lambda candidate: (-candidate.uncertainty, candidate.index))
    selection.candidates = len(ranked)
    selection.chosen = ranked[:budget]
    return selection


def _score(predictor: Predictor, pending: Sequence[tuple[int, str]]) -> list[Candidate]:
    predictions = predictor.predict([list(text) for _, text in pending]) if pending else []
    return [Candidate(text, index, prediction)
            for (index, text), prediction in zip(pending, predictions, strict=True)]
