"""Which extra text may be trained on: none that gold labels cover, and none that the job is scored on.

A `teacher` or `unlabelled` sentence with the text of a gold training sentence is left out (gold wins);
so is one with the text of a validation or test sentence, since training on another system's labels (or
the model's own) of the sentences the job is scored on would score those labels, not the model.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from albert_ner.sentences import Sentence

log = logging.getLogger("albert_ner.training")


def uncovered(read: Sequence[Sentence], gold: Iterable[Sentence], held_out: Iterable[Sentence],
              channel: str) -> list[Sentence]:
    """The sentences of ``channel`` (``read``), less those whose text gold labels (``gold``) or the job
    is scored on (``held_out``); the counts are logged."""
    gold_texts = {text_of(sentence) for sentence in gold}
    held_out_texts = {text_of(sentence) for sentence in held_out} - gold_texts
    kept = [sentence for sentence in read if text_of(sentence) not in gold_texts | held_out_texts]
    by_gold = sum(text_of(sentence) in gold_texts for sentence in read)
    log.info("channel %s: %d of %d sentences kept: %d left out for the gold labels of the same text, %d left out "
             "because validation or test holds the same text", channel, len(kept), len(read), by_gold,
             len(read) - len(kept) - by_gold)
    return kept


def text_of(sentence: Sentence) -> str:
    """The text compared: without leading and trailing spaces, which change no label."""
    return "".join(sentence.tokens).strip()
