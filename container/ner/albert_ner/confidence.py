"""How sure the model is: the probability of each predicted entity and of the sentence's whole tagging.

Both come from three per-character log-probabilities of the predicted tags
(:class:`~albert_ner.modeling.crf.PathProbabilities`): the tag's marginal, its probability given the
previous tag, and the probability that the next tag does not carry the entity on. With the CRF these are
exact consequences of its forward-backward marginals over the allowed paths, so an entity's ``score`` is
the probability, under the model, that these characters carry exactly this entity's tags (and the entity
ends where it says); with the softmax head it is the product of its tags' probabilities.

A sentence longer than the model's window is tagged window by window, independently, so its per-character
arrays are the windows' concatenated, and the sentence's score is the product of its windows' best-path
probabilities. Under a constrained CRF no entity spans two windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from albert_ner.sentences import Entity


@dataclass(frozen=True)
class TagLogProbabilities:
    """Per-character log-probabilities of one sentence's predicted tags, float32 arrays of its length."""

    marginal: np.ndarray
    conditional: np.ndarray
    closing: np.ndarray

    def entity_score(self, entity: Entity) -> float:
        """The probability that ``entity``'s characters carry exactly its tags, in [0, 1]."""
        start, end = entity.start, entity.end
        log_probability = (float(self.marginal[start]) + float(self.conditional[start + 1:end].sum(dtype=np.float64))
                           + float(self.closing[end - 1]))
        return min(1.0, float(np.exp(log_probability)))

    def sentence_score(self) -> float:
        """The probability of the whole predicted tagging (the best path), in [0, 1]; 1 for an empty text."""
        return min(1.0, float(np.exp(self.conditional.sum(dtype=np.float64))))


@dataclass(frozen=True)
class ScoredPrediction:
    """A sentence's tags and entities with their confidences: ``scores[i]`` belongs to ``entities[i]``."""

    tags: list[str]
    entities: list[Entity]
    scores: list[float]
    sentence_score: float
