"""Active learning: which unlabelled sentences to label next, written as a SageMaker Ground Truth manifest.

The uncertainty of a sentence is **one minus the probability of its best tagging** under the model
(least confidence, Settles & Craven 2008), :attr:`ScoredPrediction.sentence_score` from the CRF's
forward-backward pass. It is 0 when the model is certain of every character and approaches 1 when many
taggings compete. It grows with length (more characters, more ways to be wrong), which suits NER: longer
sentences hold more entities, so a label buys more; the budget is counted in sentences.

Sentences are ranked from most to least uncertain (ties keep input order). Empty and whitespace-only
lines, exact repeats of an earlier line, and sentences already in the labelled data are skipped (and
counted), since labelling them again teaches nothing.

The output is a Ground Truth input manifest: one JSON object per line, UTF-8, ``{"source": text}``.
With ``label_attribute`` each line also carries the model's entities as a previous labelling job's
output would, for an *adjustment* job that starts from them::

    {"source": "...", "NAME": {"annotations": {"entities": [{"label": "PER", "startOffset": 0, "endOffset": 2}],
                                               "labels": [{"label": "LOC"}, {"label": "ORG"}, {"label": "PER"}]}},
     "NAME-metadata": {"entities": [{"confidence": 0.97}], "type": "groundtruth/text-span",
                       "human-annotated": "no", "creation-date": "...", "job-name": "labeling-job/NAME"}}

Offsets are Python ``str`` (code point) offsets into ``source``, end exclusive; the confidences are the
entity scores.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from albert_ner.confidence import ScoredPrediction
from albert_ner.files import write_text_atomically
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


# Ground Truth's LabelAttributeName: letters, digits and inner hyphens, at most 127 characters.
_LABEL_ATTRIBUTE = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*")


def check_label_attribute(name: str) -> str:
    """``name`` if Ground Truth accepts it as a LabelAttributeName, else a ValueError saying why."""
    if not _LABEL_ATTRIBUTE.fullmatch(name) or len(name) > 127 or name.endswith("-metadata"):
        raise ValueError(f"label attribute name {name!r} is not one Ground Truth accepts: letters, digits and "
                         "inner hyphens, at most 127 characters, not ending in -metadata")
    return name


def manifest_record(candidate: Candidate, label_attribute: str | None = None,
                    entity_types: Sequence[str] = (), created: str | None = None) -> dict:
    """One Ground Truth input manifest object; with ``label_attribute``, the model's entities as
    pre-annotations in the NER output shape (the ``labels`` list names every type the job offers)."""
    record: dict = {"source": candidate.text}
    if label_attribute is None:
        return record
    prediction = candidate.prediction
    record[label_attribute] = {"annotations": {
        "entities": [{"label": entity.type, "startOffset": entity.start, "endOffset": entity.end}
                     for entity in prediction.entities],
        "labels": [{"label": entity_type} for entity_type in entity_types],
    }}
    record[f"{label_attribute}-metadata"] = {
        "entities": [{"confidence": round(score, 6)} for score in prediction.scores],
        "type": "groundtruth/text-span",
        "human-annotated": "no",
        "creation-date": created or datetime.datetime.now(datetime.UTC).replace(tzinfo=None).isoformat(),
        "job-name": f"labeling-job/{label_attribute}",
    }
    return record


def write_manifest(path: Path, chosen: Sequence[Candidate], label_attribute: str | None = None,
                   entity_types: Sequence[str] = ()) -> None:
    """The chosen sentences as a Ground Truth input manifest (UTF-8, one JSON object per line)."""
    created = datetime.datetime.now(datetime.UTC).replace(tzinfo=None).isoformat()
    lines = [json.dumps(manifest_record(candidate, label_attribute, entity_types, created), ensure_ascii=False)
             for candidate in chosen]
    write_text_atomically(path, "".join(line + "\n" for line in lines))
