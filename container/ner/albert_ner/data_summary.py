"""What a split of the data holds: sentences, characters, entities per type, windows, [UNK]s, repairs.

The training log and the report page both show it, from the same object, so they cannot disagree.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from albert_ner.sentences import Sentence
from albert_ner.tokenization import CharTokenizer
from albert_ner.windows import split_into_windows

log = logging.getLogger("albert_ner.training")


@dataclass(frozen=True)
class SplitSummary:
    """One split (training, validation, test, or the files given to ``albert-ner evaluate``).

    ``repairs`` counts the entities whose broken tags the reader fixed (``repair_tags``); it is ``None`` for
    a split held out of another channel, whose count includes it.
    """

    name: str
    sentences: int
    characters: int
    entities: dict[str, int]
    windows: int
    long_sentences: int  # sentences longer than one window, split into several
    window_characters: int
    unknown_rate: float
    unknown_most_common: str
    repairs: int | None


def summarize_split(name: str, sentences: Sequence[Sentence], tokenizer: CharTokenizer, window_characters: int,
                    repairs: int | None) -> SplitSummary:
    entities = Counter(entity.type for sentence in sentences for entity in sentence.entities)
    windows = [len(split_into_windows(sentence, window_characters)) for sentence in sentences]
    _, unknown = tokenizer.encode_corpus([sentence.tokens for sentence in sentences])
    return SplitSummary(
        name=name, sentences=len(sentences), characters=sum(len(sentence.tokens) for sentence in sentences),
        entities=dict(sorted(entities.items())), windows=sum(windows),
        long_sentences=sum(count > 1 for count in windows), window_characters=window_characters,
        unknown_rate=unknown.rate, unknown_most_common="".join(char for char, _ in unknown.most_common[:10]),
        repairs=repairs)


def log_summaries(summaries: Sequence[SplitSummary]) -> None:
    """One line per split in the job log, with the same figures the report page shows."""
    for summary in summaries:
        log.info("data %s: %d sentences, %d characters, entities %s, [UNK] rate %.4f%s, %d sentence(s) "
                 "longer than %d characters split into windows", summary.name, summary.sentences,
                 summary.characters, json.dumps(summary.entities, ensure_ascii=False), summary.unknown_rate,
                 f" (most common: {summary.unknown_most_common})" if summary.unknown_most_common else "",
                 summary.long_sentences, summary.window_characters)
