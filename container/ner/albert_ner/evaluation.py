"""Entity-level scores (seqeval, strict) on whole sentences, plus the token-level figure of the reference.

The headline is strict entity-level F1: an entity counts only when its type, start and end all match.
The reference article reported a token-level macro F1 of a softmax tagger (0.948), which is not
comparable; it is computed here too, labelled as such, so the two can be put side by side.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from seqeval.metrics import classification_report
from seqeval.scheme import IOBES
from sklearn.metrics import f1_score

from albert_ner.files import write_text_atomically
from albert_ner.sentences import Entity, Sentence
from albert_ner.tag_schemes import entities_to_tags


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class EvaluationReport:
    """Per-type and averaged entity scores, and the token-level macro F1 for comparison."""

    per_type: dict[str, Scores]
    micro: Scores
    macro: Scores
    token_macro_f1: float
    sentences: int

    @property
    def f1(self) -> float:
        return self.micro.f1

    def to_dict(self) -> dict:
        return {
            "entity_level_strict": {
                "per_type": {name: vars(scores) for name, scores in self.per_type.items()},
                "micro_avg": vars(self.micro),
                "macro_avg": vars(self.macro),
            },
            "token_level_macro_f1": self.token_macro_f1,
            "sentences": self.sentences,
        }

    def table(self) -> str:
        """A fixed-width table of the kind people paste into tickets."""
        rows = [(name, scores) for name, scores in self.per_type.items()]
        rows += [("micro avg", self.micro), ("macro avg", self.macro)]
        width = max(12, *(len(name) + 2 for name, _ in rows))
        lines = [f"{'entity type':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
        for index, (name, scores) in enumerate(rows):
            if index == len(self.per_type):
                lines.append("")
            lines.append(f"{name:<{width}}{scores.precision:>10.4f}{scores.recall:>10.4f}"
                         f"{scores.f1:>10.4f}{scores.support:>10d}")
        lines.append("")
        lines.append(f"token-level macro F1 (reference article's metric, not comparable): "
                     f"{self.token_macro_f1:.4f}")
        return "\n".join(lines)


def evaluate(sentences: Sequence[Sentence], predicted: Sequence[Sequence[Entity]]) -> EvaluationReport:
    """Score entities predicted for ``sentences`` against their gold entities, over whole sentences."""
    if len(sentences) != len(predicted):
        raise ValueError(f"{len(sentences)} sentences but {len(predicted)} predictions")
    lengths = [len(sentence.tokens) for sentence in sentences]
    gold = [sentence.entities for sentence in sentences]
    gold_tags = [entities_to_tags(length, entities, "bioes") for length, entities in zip(lengths, gold, strict=True)]
    predicted_tags = [entities_to_tags(length, entities, "bioes")
                      for length, entities in zip(lengths, predicted, strict=True)]
    report = classification_report(gold_tags, predicted_tags, mode="strict", scheme=IOBES,
                                   output_dict=True, zero_division=0)

    def scores(row: dict) -> Scores:
        return Scores(float(row["precision"]), float(row["recall"]), float(row["f1-score"]),
                      int(row["support"]))

    averages = {"micro avg", "macro avg", "weighted avg"}
    per_type = {name: scores(row) for name, row in sorted(report.items()) if name not in averages}
    empty = Scores(0.0, 0.0, 0.0, 0)
    return EvaluationReport(
        per_type=per_type,
        micro=scores(report["micro avg"]) if "micro avg" in report else empty,
        macro=scores(report["macro avg"]) if "macro avg" in report else empty,
        token_macro_f1=_token_macro_f1(gold_tags, predicted_tags),
        sentences=len(lengths),
    )


def _token_macro_f1(gold_tags: Sequence[Sequence[str]], predicted_tags: Sequence[Sequence[str]]) -> float:
    """Macro F1 over every non-O tag label, one vote per character (the reference article's figure)."""
    flat_gold = [tag for tags in gold_tags for tag in tags]
    flat_predicted = [tag for tags in predicted_tags for tag in tags]
    labels = sorted({tag for tag in flat_gold if tag != "O"})
    if not labels:
        return 0.0
    return float(f1_score(flat_gold, flat_predicted, labels=labels, average="macro", zero_division=0))


def write_report(report: EvaluationReport, directory: Path, name: str) -> None:
    """Write ``<name>.json`` and ``<name>.txt`` atomically into ``directory``."""
    write_text_atomically(directory / f"{name}.json", json.dumps(report.to_dict(), indent=2) + "\n")
    write_text_atomically(directory / f"{name}.txt", report.table() + "\n")


@dataclass(frozen=True)
class EvaluatedSplit:
    """A split's sentences, the entities predicted for them, and the report computed from the two."""

    name: str
    sentences: Sequence[Sentence]
    predicted: Sequence[Sequence[Entity]]
    report: EvaluationReport
