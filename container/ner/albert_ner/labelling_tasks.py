"""Sentences to label, written as the files the labelling tools import, optionally pre-annotated with the
model's entities so that people correct rather than start from nothing.

``ground-truth``
    A SageMaker Ground Truth input manifest: one JSON object per line, ``{"source": text}``. With a label
    attribute each line also carries the model's entities as a previous labelling job's output would, for
    an *adjustment* job that starts from them::

        {"source": "...", "NAME": {"annotations": {"entities": [{"label": "PER", "startOffset": 0, "endOffset": 2}],
                                                   "labels": [{"label": "LOC"}, {"label": "ORG"}, {"label": "PER"}]}},
         "NAME-metadata": {"entities": [{"confidence": 0.97}], "type": "groundtruth/text-span",
                           "human-annotated": "no", "creation-date": "...", "job-name": "labeling-job/NAME"}}

``label-studio``
    A JSON list of Label Studio tasks, ``{"data": {"text": ...}, "predictions": [...]}``, which its import
    takes as pre-annotations (:mod:`albert_ner.label_studio.predictions`), for the stock named-entity
    template or the project's own labelling config.

``doccano``
    doccano's sequence-labelling JSONL, ``{"text": ..., "label": [[start, end, "TYPE"], ...]}``, which its
    import shows as the labels to review.

Offsets are Python ``str`` (code point) offsets into the text, end exclusive, as all three tools count.
"""

from __future__ import annotations

import datetime
import json
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any, TextIO

from albert_ner.confidence import ScoredPrediction
from albert_ner.label_studio.config import LabellingInterface
from albert_ner.label_studio.predictions import task

GROUND_TRUTH = "ground-truth"
LABEL_STUDIO = "label-studio"
DOCCANO = "doccano"
FORMATS = (GROUND_TRUTH, LABEL_STUDIO, DOCCANO)

# Ground Truth's LabelAttributeName: letters, digits and inner hyphens, at most 127 characters.
_LABEL_ATTRIBUTE = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*")


def check_label_attribute(name: str) -> str:
    """``name`` if Ground Truth accepts it as a LabelAttributeName, else a ValueError saying why."""
    if not _LABEL_ATTRIBUTE.fullmatch(name) or len(name) > 127 or name.endswith("-metadata"):
        raise ValueError(f"label attribute name {name!r} is not one Ground Truth accepts: letters, digits and "
                         "inner hyphens, at most 127 characters, not ending in -metadata")
    return name


def manifest_record(text: str, prediction: ScoredPrediction, label_attribute: str | None = None,
                    entity_types: Sequence[str] = (), created: str | None = None) -> dict[str, Any]:
    """One Ground Truth input manifest object; with ``label_attribute``, the model's entities as
    pre-annotations in the NER output shape (the ``labels`` list names every type the job offers)."""
    record: dict[str, Any] = {"source": text}
    if label_attribute is None:
        return record
    record[label_attribute] = {"annotations": {
        "entities": [{"label": entity.type, "startOffset": entity.start, "endOffset": entity.end}
                     for entity in prediction.entities],
        "labels": [{"label": entity_type} for entity_type in entity_types],
    }}
    record[f"{label_attribute}-metadata"] = {
        "entities": [{"confidence": round(score, 6)} for score in prediction.scores],
        "type": "groundtruth/text-span",
        "human-annotated": "no",
        "creation-date": created or _now(),
        "job-name": f"labeling-job/{label_attribute}",
    }
    return record


def doccano_record(text: str, prediction: ScoredPrediction) -> dict[str, Any]:
    """One line of doccano's sequence-labelling JSONL."""
    return {"text": text, "label": [[entity.start, entity.end, entity.type] for entity in prediction.entities]}


class TaskWriter:
    """Writes one sentence at a time in one of :data:`FORMATS`, so a large input is never held whole.

    ``label_attribute`` (Ground Truth) and ``interface`` with ``model_version`` (Label Studio) say what to
    pre-annotate with; ``left_out`` counts the entity types the Label Studio config has no label for.
    """

    def __init__(self, output: TextIO, format: str, *, label_attribute: str | None = None,
                 entity_types: Sequence[str] = (), interface: LabellingInterface | None = None,
                 model_version: str = ""):
        if format not in FORMATS:
            raise ValueError(f"unknown task format {format!r}; expected one of {', '.join(FORMATS)}")
        if format == LABEL_STUDIO and interface is None:
            raise ValueError("Label Studio tasks need the labelling interface they are for")
        self.output, self.format = output, format
        self.label_attribute, self.entity_types = label_attribute, entity_types
        self.interface, self.model_version = interface, model_version
        self.created = _now()
        self.written = 0
        self.left_out: Counter[str] = Counter()

    def write(self, text: str, prediction: ScoredPrediction) -> None:
        if self.format == LABEL_STUDIO:
            assert self.interface is not None
            record = task(text, prediction, self.interface, self.model_version, self.left_out)
            # A JSON list (what Label Studio imports), one task per line.
            self.output.write(("[\n" if self.written == 0 else ",\n") + json.dumps(record, ensure_ascii=False))
        else:
            record = (doccano_record(text, prediction) if self.format == DOCCANO else
                      manifest_record(text, prediction, self.label_attribute, self.entity_types, self.created))
            self.output.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.written += 1

    def close(self) -> None:
        """End the document (the Label Studio list's closing bracket; ``[]`` when nothing was written)."""
        if self.format == LABEL_STUDIO:
            self.output.write("\n]\n" if self.written else "[]\n")


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None).isoformat()
