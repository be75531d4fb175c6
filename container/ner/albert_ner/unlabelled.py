"""The ``unlabelled`` channel: raw text from the user's domain, which self-training tags and learns from
(:mod:`albert_ner.self_training`).

One sentence per line, or JSON Lines with the text under ``"text"`` (a JSON string, or a Ground Truth
input manifest's ``"source"``, reads too), by the rule ``albert-ner predict`` reads its input with
(:func:`albert_ner.text_records.read_texts`): a line that is not UTF-8, or JSON that does not parse or has
no text, fails naming the file and line. Blank lines separate nothing and are skipped, counted in the log;
leading and trailing spaces are dropped (they label nothing, and would hide a held-out sentence's text).
"""

from __future__ import annotations

import logging
from pathlib import Path

from albert_ner.errors import DataError
from albert_ner.files import channel_files
from albert_ner.readers.spans import located
from albert_ner.sentences import Sentence
from albert_ner.text_records import read_texts

UNLABELLED_CHANNEL = "unlabelled"

log = logging.getLogger("albert_ner.training")


def read_unlabelled(directory: Path) -> list[Sentence]:
    """Every non-blank line of the channel's files, in sorted path order, as a sentence without entities
    whose ``source`` is its file and line."""
    if not directory.exists():
        raise DataError("no such file or directory", directory)
    paths = channel_files(directory)
    if not paths:
        raise DataError("no text files in this directory (hidden files are skipped)", directory)
    sentences, blank = [], 0
    for path in paths:
        for number, text in enumerate(read_texts(path), start=1):
            if text := text.strip():  # the text a gold or held-out sentence would have
                sentences.append(Sentence(tuple(text), (), located(path, number)))
            else:
                blank += 1
    if not sentences:
        raise DataError(f"no text: all {blank} line(s) of the channel are blank", directory)
    log.info("channel %s: %d sentences from %d file(s), %d blank line(s) skipped", UNLABELLED_CHANNEL,
             len(sentences), len(paths), blank)
    return sentences
