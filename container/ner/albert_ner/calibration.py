"""Are the entity scores calibrated? Scores against precision in bins, and the expected calibration error.

An entity score ``s`` is calibrated when, of all predicted entities scored about ``s``, a share ``s`` is
right (exactly the gold span and type, as strict seqeval counts it). The scores in ``[0, 1]`` are cut into
``bins`` equal-width bins (a score of exactly 1 falls in the last); each bin reports its count, mean
score and precision, and the expected calibration error is
``ECE = sum over bins of (count / total) * |precision - mean score|`` (Guo et al. 2017), 0 for perfect
calibration. Only predicted entities are scored: entities the model missed have no score, and recall is
not what a confidence speaks to.

When the scores are off, :func:`fit_temperature` fits one temperature ``T`` on *validation* data (never
the test set): every path's CRF score is divided by ``T`` before normalising (the softmax head's logits
likewise), which changes no prediction, only how sure it claims to be. ``T`` minimises the log loss of the
validation entities' scores against their correctness, and is saved with the model as
``calibration.json``, which the Predictor, ``serve`` and the SavedModel then apply
(``albert-ner calibrate MODEL_DIR VALIDATION_FILE_OR_DIR``, :func:`calibrate`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from albert_ner.confidence import ScoredPrediction
from albert_ner.sentences import Sentence

if TYPE_CHECKING:
    from albert_ner.prediction import Predictor


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


def log_loss(outcomes: Sequence[tuple[float, bool]]) -> float:
    """Mean binary cross-entropy of the scores against correctness (scores clipped to [1e-7, 1 - 1e-7])."""
    scores = np.clip(np.array([score for score, _ in outcomes], dtype=np.float64), 1e-7, 1 - 1e-7)
    correct = np.array([right for _, right in outcomes], dtype=bool)
    return float(-np.mean(np.where(correct, np.log(scores), np.log1p(-scores))))


def at_temperature(predictor: Predictor, temperature: float) -> Predictor:
    """The same model and vocabulary, scoring at ``temperature``."""
    from albert_ner.prediction import Predictor

    return Predictor(predictor.core, predictor.tokenizer, predictor.label_map, predictor.max_seq_length,
                     predictor.batch_size, pretrained=predictor.pretrained, temperature=temperature,
                     lexicon=predictor.lexicon)


def fit_temperature(predictor: Predictor, validation: Sequence[Sentence],
                    bounds: tuple[float, float] = (0.1, 10.0)) -> float:
    """The temperature in ``bounds`` that minimises the validation entities' score log loss."""
    from scipy.optimize import minimize_scalar

    tokens = [sentence.tokens for sentence in validation]

    def loss(log_temperature: float) -> float:
        scored = at_temperature(predictor, math.exp(log_temperature))
        return log_loss(entity_outcomes(validation, scored.predict(tokens)))

    found = minimize_scalar(loss, bounds=(math.log(bounds[0]), math.log(bounds[1])), method="bounded",
                            options={"xatol": 0.01})
    return float(math.exp(found.x))


def calibrate(predictor: Predictor, validation: Sequence[Sentence]) -> tuple[Predictor, dict[str, float]]:
    """The predictor at the temperature fitted on ``validation``, and the fit's report: the temperature and
    the validation entities' calibration error and log loss before and after."""
    predictor = at_temperature(predictor, 1.0)
    before = entity_outcomes(validation, predictor.predict([s.tokens for s in validation]))
    temperature = fit_temperature(predictor, validation)
    calibrated = at_temperature(predictor, temperature)
    after = entity_outcomes(validation, calibrated.predict([s.tokens for s in validation]))
    return calibrated, {"temperature": temperature, "validation_entities": len(before),
                        "validation_ece_before": reliability(before).ece,
                        "validation_ece_after": reliability(after).ece,
                        "validation_log_loss_before": log_loss(before),
                        "validation_log_loss_after": log_loss(after)}
