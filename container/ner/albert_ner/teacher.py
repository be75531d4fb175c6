"""The ``teacher`` channel: another system's entity spans (a larger model, a fixed tool, a large language
model), trained on beside the gold data.

A teacher labels raw text from the user's domain cheaply and at scale; the student learns from those
labels and the gold ones together, each teacher sentence weighing ``teacher_weight`` in the loss (times
the lowest score of its entities, where the teacher gives scores: a sentence is as sure as its least sure
entity). The channel is read like every labelled channel, in any format the job reads, and does not know
which system wrote it.

Where a sentence has gold labels, gold wins: a teacher sentence whose text is a gold training sentence's
is left out. So is one whose text is a validation or test sentence: training on a teacher's labels of the
sentences the job is scored on would score the teacher's memory, not the model. Both counts are logged.
A teacher's entity types must be the model's, renamed with ``teacher_type_mapping`` where they differ.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from albert_ner.errors import DataError, HyperparameterError
from albert_ner.label_studio.config import LabelConfigError, parse_label_mapping
from albert_ner.sentences import Sentence

TEACHER_CHANNEL = "teacher"

log = logging.getLogger("albert_ner.training")


@dataclass(frozen=True)
class TeacherSentences:
    """The teacher's sentences the job trains on, with the loss weight of each."""

    sentences: list[Sentence]
    weights: list[float]


def type_mapping(value: str | None) -> dict[str, str]:
    """``teacher_type_mapping`` (``TEACHER=TYPE,...``) as a dict."""
    try:
        return parse_label_mapping(value or "")
    except LabelConfigError as error:
        raise HyperparameterError(f"hyperparameter teacher_type_mapping={value!r}: {error}") from None


def uncovered(read: Sequence[Sentence], gold: Iterable[Sentence], held_out: Iterable[Sentence]) -> list[Sentence]:
    """The teacher's sentences ``read``, less those whose text gold labels (``gold``) or the job is scored
    on (``held_out``): what is trained on (and what the vocabulary is built from) of the channel."""
    gold_texts = {_text(sentence) for sentence in gold}
    held_out_texts = {_text(sentence) for sentence in held_out} - gold_texts
    kept = [sentence for sentence in read if _text(sentence) not in gold_texts | held_out_texts]
    by_gold = sum(_text(sentence) in gold_texts for sentence in read)
    log.info("channel %s: %d of %d sentences kept: %d left out for the gold labels of the same text, %d left out "
             "because validation or test holds the same text", TEACHER_CHANNEL, len(kept), len(read), by_gold,
             len(read) - len(kept) - by_gold)
    return kept


def teacher_sentences(kept: Sequence[Sentence], entity_types: Iterable[str], mapping: dict[str, str],
                      weight: float) -> TeacherSentences:
    """The teacher's sentences ``kept`` (:func:`uncovered`) with their types renamed by ``mapping``, each
    weighted by ``weight`` times the lowest of its entities' scores."""
    known = set(entity_types)
    sentences = [_renamed(sentence, mapping, known) for sentence in kept]
    weights = [weight * min((score for score in sentence.entity_scores or () if score is not None), default=1.0)
               for sentence in sentences]
    if any(sentence.entity_scores for sentence in sentences):
        log.info("channel %s: weight %g times the lowest entity score: mean weight %.3f", TEACHER_CHANNEL, weight,
                 math.fsum(weights) / len(weights))
    else:
        log.info("channel %s: weight %g", TEACHER_CHANNEL, weight)
    return TeacherSentences(sentences, weights)


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


def _text(sentence: Sentence) -> str:
    return "".join(sentence.tokens)
