"""Self-training: the model tags the ``unlabelled`` channel's text, keeps the sentences it is sure of, and
trains again on the gold sentences and those pseudo-labelled ones; a set number of rounds, each tagging
with the best model of the round before, stopping early when a round does not raise validation F1.

Sure means every entity of the sentence scores at least ``self_training_threshold``, and a sentence in
which the model finds no entity at all is kept only if the probability of its whole tagging (all "O")
does: otherwise every sentence whose names the model misses would teach it to miss them. The scores are
the live model's CRF marginals (:mod:`albert_ner.confidence`), not yet temperature-calibrated. A kept
sentence weighs ``self_training_weight`` times its lowest entity score (or, without entities, that
probability) in the loss. The round loop itself is in :func:`albert_ner.training.train`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from albert_ner.confidence import ScoredPrediction
from albert_ner.sentences import Entity, Sentence, WeightedSentences, lowest_score

log = logging.getLogger("albert_ner.training")


class Tagger(Protocol):
    def predict(self, token_sequences: Sequence[Sequence[str]]) -> list[ScoredPrediction]: ...


def pseudo_labelled(tagger: Tagger, sentences: Sequence[Sentence], threshold: float, weight: float,
                    round_number: int) -> WeightedSentences:
    """``sentences`` tagged by ``tagger``, those whose every entity (or, without entities, the all-"O"
    tagging) scores ``threshold`` or more, each weighted by ``weight`` times its lowest score."""
    kept: list[Sentence] = []
    entities = 0
    for sentence, prediction in zip(sentences, tagger.predict([s.tokens for s in sentences]), strict=True):
        # Without entities, the sentence's own score stands in for them: the probability it has none.
        scores = prediction.scores or [prediction.sentence_score]
        if all(score >= threshold for score in scores):
            kept.append(Sentence(sentence.tokens, tuple(Entity(*entity) for entity in prediction.entities),
                                 sentence.source, tuple(scores)))
            entities += len(prediction.entities)
    log.info("self-training round %d: %d of %d unlabelled sentences kept (every entity scored >= %g), with %d "
             "entities", round_number, len(kept), len(sentences), threshold, entities)
    return WeightedSentences(kept, [weight * lowest_score(sentence) for sentence in kept])
