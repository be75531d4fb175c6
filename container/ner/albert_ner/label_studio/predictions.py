"""The model's entities as Label Studio predictions: the regions its editor shows as pre-annotations and
the ML backend answers ``/predict`` with.

A prediction is ``{"model_version", "score", "result": [region, ...]}``; a region is ``{"id", "from_name",
"to_name", "type": "labels", "score", "value": {"start", "end", "text", "labels": [label]}}``. The region's
score is the entity's probability (:mod:`albert_ner.confidence`); the prediction's is the probability of the
whole tagging, so Label Studio's "sort by prediction score" puts the sentences the model is least sure of
first, the ones :mod:`albert_ner.selection` would choose.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from albert_ner.confidence import ScoredPrediction
from albert_ner.label_studio.config import LabellingInterface


def prediction(text: str, scored: ScoredPrediction, interface: LabellingInterface, model_version: str,
               left_out: Counter[str] | None = None) -> dict[str, Any]:
    """One task's prediction; entity types the interface has no label for are counted in ``left_out``."""
    result = []
    for number, (entity, score) in enumerate(zip(scored.entities, scored.scores, strict=True)):
        label = interface.label_for(entity.type)
        if label is None:
            if left_out is not None:
                left_out[entity.type] += 1
            continue
        result.append({"id": f"e{number}", "from_name": interface.from_name, "to_name": interface.to_name,
                       "type": "labels", "score": round(score, 6),
                       "value": {"start": entity.start, "end": entity.end, "text": text[entity.start:entity.end],
                                 "labels": [label]}})
    return {"model_version": model_version, "score": round(scored.sentence_score, 6), "result": result}


def task(text: str, scored: ScoredPrediction, interface: LabellingInterface, model_version: str,
         left_out: Counter[str] | None = None) -> dict[str, Any]:
    """A task to import, pre-annotated: ``{"data": {key: text}, "predictions": [prediction]}``."""
    return {"data": {interface.data_key: text},
            "predictions": [prediction(text, scored, interface, model_version, left_out)]}
