"""CLUENER2020 JSON: ``{"text": ..., "label": {"TYPE": {"mention": [[start, end], ...]}}}``.

The end index is **inclusive** (``[[0, 3]]`` is the first four characters), and each span is listed under
the mention's own text, which must equal the slice it points to. The published files are JSON Lines;
files re-saved as one array, or as objects pretty-printed one after another, read the same (see
:mod:`~albert_ner.readers.json_records`). The unlabelled test file (``{"id", "text"}`` only) is not
training data and fails naming its first line.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from albert_ner.errors import DataError
from albert_ner.files import PathLike
from albert_ner.readers.spans import Mention, ReadOptions, ReadReport, check_offset, check_type, located, sentence_from
from albert_ner.sentences import Sentence

FORMAT = "cluener"


def matches(record: Any) -> bool:
    return isinstance(record, dict) and "text" in record and isinstance(record.get("label"), dict)


def read_records(
    records: Iterable[tuple[int, Any]], path: PathLike, options: ReadOptions
) -> tuple[list[Sentence], ReadReport]:
    report = ReadReport(scheme=FORMAT)
    sentences = []
    for line, record in records:
        def fail(message: str, line: int = line) -> DataError:
            return DataError(message, path, line)

        if not matches(record):
            raise fail('expected a CLUENER record {"text": ..., "label": {"TYPE": {"mention": [[start, end]]}}}, '
                       f"found keys {', '.join(record) if isinstance(record, dict) else repr(record)[:80]}")
        mentions = []
        for entity_type, by_mention in record["label"].items():
            check_type(entity_type, f"label.{entity_type}", fail)
            if not isinstance(by_mention, dict):
                raise fail(f'label.{entity_type} must map each mention to its spans, found {by_mention!r:.80}')
            for mention, spans in by_mention.items():
                name = f"label.{entity_type}.{mention}"
                if not isinstance(spans, list):
                    raise fail(f"{name} must be a list of [start, end] pairs, found {spans!r:.80}")
                for index, span in enumerate(spans):
                    if not isinstance(span, list) or len(span) != 2:
                        raise fail(f"{name}[{index}]: expected [start, end] (end inclusive), found {span!r:.80}")
                    start = check_offset(span[0], f"{name}[{index}]", fail)
                    end = check_offset(span[1], f"{name}[{index}]", fail)
                    mentions.append(Mention(start, end + 1, entity_type, f"{name}[{index}]", mention))
        sentences.append(sentence_from(record["text"], mentions, located(path, line), options, report, fail))
    return sentences, report
