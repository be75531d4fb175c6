"""Are the entity scores calibrated? Scores against precision in bins, and the expected calibration error.

An entity score ``s`` is calibrated when, of all predicted entities scored about ``s``, a share ``s`` is
right (exactly the gold span and type, as strict seqeval counts it). The scores in ``[0, 1]`` are cut into
``bins`` equal-width bins (a score of exactly 1 falls in the last); each bin reports its count, mean
score and precision, and the expected calibration error is
``ECE = sum over bins of (count / total) * |precision - mean score|`` (Guo et al. 2017), 0 for perfect
calibration. Only predicted entities are scored: entities the model missed have no score, and recall is
not what a confidence speaks to.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from albert_ner.confidence import ScoredPrediction
from albert_ner.data import Sentence


@dataclass(frozen=True)
class ReliabilityBin:
    lower: float
    upper: float
    count: int
    mean_score: float  # NaN when empty
    precision: float  # NaN when empty


@dataclass(frozen=True)
class Reliability:
    bins: list[ReliabilityBin]
    entities: int
    ece: float

    def table(self) -> str:
        """A Markdown table of the bins, then the ECE."""
        lines = ["| score bin | entities | mean score | precision |", "|---|---:|---:|---:|"]
        for item in self.bins:
            closing = "]" if item.upper == 1.0 else ")"
            mean = "-" if not item.count else f"{item.mean_score:.3f}"
            precision = "-" if not item.count else f"{item.precision:.3f}"
            lines.append(f"| [{item.lower:.1f}, {item.upper:.1f}{closing} | {item.count:,} | {mean} | {precision} |")
        lines.append(f"\nexpected calibration error (ECE, {len(self.bins)} bins, {self.entities:,} entities): "
                     f"{self.ece:.4f}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"entities": self.entities, "ece": self.ece,
                "bins": [{"lower": b.lower, "upper": b.upper, "count": b.count,
                          "mean_score": None if not b.count else b.mean_score,
                          "precision": None if not b.count else b.precision} for b in self.bins]}


def entity_outcomes(gold: Sequence[Sentence], predictions: Sequence[ScoredPrediction]) -> list[tuple[float, bool]]:
    """``(score, correct)`` for every predicted entity; correct means the exact gold span and type."""
    if len(gold) != len(predictions):
        raise ValueError(f"{len(gold)} gold sentences but {len(predictions)} predictions")
    outcomes = []
    for sentence, prediction in zip(gold, predictions, strict=True):
        truth = set(sentence.entities)
        outcomes += [(score, entity in truth)
                     for entity, score in zip(prediction.entities, prediction.scores, strict=True)]
    return outcomes


def reliability(outcomes: Iterable[tuple[float, bool]], bins: int = 10) -> Reliability:
    """Bin ``(score, correct)`` pairs and compute the ECE (module docstring)."""
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    pairs = list(outcomes)
    scores = np.array([score for score, _ in pairs], dtype=np.float64)
    correct = np.array([right for _, right in pairs], dtype=np.float64)
    if ((scores < 0) | (scores > 1) | np.isnan(scores)).any():
        raise ValueError("scores must lie in [0, 1]")
    index = np.minimum((scores * bins).astype(np.int64), bins - 1)
    result, ece = [], 0.0
    for number in range(bins):
        members = index == number
        count = int(members.sum())
        mean = float(scores[members].mean()) if count else float("nan")
        precision = float(correct[members].mean()) if count else float("nan")
        if count:
            ece += count / len(pairs) * abs(precision - mean)
        result.append(ReliabilityBin(number / bins, (number + 1) / bins, count, mean, precision))
    return Reliability(result, len(pairs), ece)
