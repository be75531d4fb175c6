"""The ``teacher`` channel: another system's entity spans (a larger model, a fixed tool, a large language
model), trained on beside the gold data.

A teacher labels raw text from the user's domain cheaply and at scale; the student learns from those
labels and the gold ones together, each teacher sentence weighing ``teacher_weight`` in the loss (times
the lowest score of its entities, where the teacher gives scores: a sentence is as sure as its least sure
entity). The channel is read like every labelled channel, in any format the job reads, and does not know
which system wrote it.

Where a sentence has gold labels, gold wins, and no teacher label of a validation or test sentence is
trained on (:mod:`albert_ner.scored_text`).
A teacher's entity types must be the model's, renamed with ``teacher_type_mapping`` where they differ.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterable, Sequence

from albert_ner.errors import DataError, HyperparameterError
from albert_ner.label_studio.config import LabelConfigError, parse_label_mapping
from albert_ner.sentences import Sentence, WeightedSentences, lowest_score

TEACHER_CHANNEL = "teacher"

log = logging.getLogger("albert_ner.training")


def type_mapping(value: str | None) -> dict[str, str]:
    """``teacher_type_mapping`` (``TEACHER=TYPE,...``) as a dict."""
    try:
        return parse_label_mapping(value or "")
    except LabelConfigError as error:
        raise HyperparameterError(f"hyperparameter teacher_type_mapping={value!r}: {error}") from None


def teacher_sentences(kept: Sequence[Sentence], entity_types: Iterable[str], mapping: dict[str, str],
                      weight: float) -> WeightedSentences:
    """The teacher's sentences ``kept`` (:func:`~albert_ner.scored_text.uncovered`) with their types renamed
    by ``mapping``, each weighted by ``weight`` times the lowest of its entities' scores."""
    known = set(entity_types)
    sentences = [_renamed(sentence, mapping, known) for sentence in kept]
    weights = [weight * lowest_score(sentence) for sentence in sentences]
    if any(sentence.entity_scores for sentence in sentences):
        log.info("channel %s: weight %g times the lowest entity score: mean weight %.3f", TEACHER_CHANNEL, weight,
                 math.fsum(weights) / len(weights))
    else:
        log.info("channel %s: weight %g", TEACHER_CHANNEL, weight)
    return WeightedSentences(sentences, weights)


def _renamed(sentence: Sentence, mapping: dict[str, str], known: set[str]) -> Sentence:
    entities = tuple(entity._replace(type=mapping.get(entity.type, entity.type)) for entity in sentence.entities)
    for entity, original in zip(entities, sentence.entities, strict=True):
        if entity.type not in known:
            renamed = f" (renamed from {original.type} by teacher_type_mapping)" if entity != original else ""
            raise DataError(f"channel {TEACHER_CHANNEL}: entity type {entity.type!r}{renamed} is not among the model's "
                            f"entity types ({', '.join(sorted(known))}): rename it with the hyperparameter "
                            f"teacher_type_mapping={entity.type}=TYPE", *_where(sentence))
    return dataclasses.replace(sentence, entities=entities) if entities != sentence.entities else sentence


def _where(sentence: Sentence) -> tuple[str, int | None]:
    """The file and line of ``sentence.source`` ("path:line"), for the error."""
    path, _, line = sentence.source.rpartition(":")
    return (path, int(line)) if line.isdigit() else (sentence.source, None)


