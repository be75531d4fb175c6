"""doccano's sequence-labelling exports, every version, and the project's own JSON Lines.

One JSON object per line; offsets are character offsets, end exclusive:

- up to 1.2: ``{"text": ..., "labels": [[start, end, "TYPE"], ...]}``
- 1.3 to 1.6: ``{"data": ..., "label": [[start, end, "TYPE"], ...]}``
- 1.7 on: ``{"text": ..., "label": [[start, end, "TYPE"], ...], "Comments": [...]}``
- relation projects: ``{"text": ..., "entities": [{"id", "label", "start_offset", "end_offset"}],
  "relations": [...]}``; relations are ignored and counted.
- this project's JSON Lines: ``{"text": ..., "entities": [[start, end, "TYPE"], ...]}`` (entities may also
  be ``{"start", "end", "type"}`` objects). An entity may carry how sure its labeller was, a number from 0
  to 1: ``[start, end, "TYPE", score]`` or a ``"score"`` key (what a `teacher` channel weighs its
  sentences by, :mod:`albert_ner.teacher`).

Any other keys (``id``, ``meta``, user columns) are ignored. doccano does not repeat the mention's text, so
offsets are checked only against the text's length.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from albert_ner.errors import DataError
from albert_ner.files import PathLike
from albert_ner.readers.spans import Mention, ReadOptions, ReadReport, check_type, located, resolve_overlaps
from albert_ner.sentences import Sentence

JSONL_FORMAT = "jsonl"
FORMAT = "doccano"
_SPAN_KEYS = ("entities", "label", "labels")


def matches(record: Any) -> bool:
    return isinstance(record, dict) and ("text" in record or isinstance(record.get("data"), str))


def read_records(
    records: Iterable[tuple[int, Any]], path: PathLike, options: ReadOptions
) -> tuple[list[Sentence], ReadReport]:
    report = ReadReport()
    formats = set()
    sentences = []
    for line, record in records:
        sentence, form = read_record(record, path, line, options, report)
        sentences.append(sentence)
        formats.add(form)
    report.scheme = "+".join(sorted(formats))
    return sentences, report


def read_record(
    record: Any, path: PathLike, line: int, options: ReadOptions, report: ReadReport
) -> tuple[Sentence, str]:
    """One record as a sentence, with the name of the form it was in (doccano or the project's own)."""
    def fail(message: str) -> DataError:
        return DataError(message, path, line)

    if not isinstance(record, dict):
        raise fail(f'expected a JSON object {{"text": ..., "entities": ...}}, found {_json(record)[:80]}')
    text_key = "text" if "text" in record else "data" if isinstance(record.get("data"), str) else None
    if text_key is None:
        raise fail(f'missing "text" (keys found: {", ".join(record) or "none"})')
    text = record[text_key]
    if not isinstance(text, str) or not text:
        raise fail(f'"{text_key}" must be a non-empty string, found {_json(text)[:80]}')
    key = next((k for k in _SPAN_KEYS if k in record), None)
    if key is None:
        if set(record) <= {"id", "text"}:
            raise fail('missing "entities": this record has a text and no labels (an unlabelled file, such as '
                       "CLUENER's test.json, is not training data)")
        if "annotations" in record:
            raise fail('"annotations" with label ids: this older doccano export names labels by number only; '
                       'export again as "JSONL" with label names')
        raise fail('missing "entities" (or doccano\'s "label"): expected "entities": [[start, end, "TYPE"], ...]')
    items = record[key]
    if not isinstance(items, list):
        raise fail(f'"{key}" must be a list of [start, end, "TYPE"], found {_json(items)[:80]}')
    if isinstance(record.get("relations"), list):
        report.skipped["doccano relations"] += len(record["relations"])
    mentions = [_mention(item, f"{key}[{i}]", fail) for i, item in enumerate(items)]
    for mention in mentions:
        if not 0 <= mention.start < mention.end <= len(text):
            raise fail(f"{mention.field} [{mention.start}, {mention.end}, {mention.type!r}] is out of range: need "
                       f'0 <= start < end <= {len(text)}, the length of "{text_key}"')
    own = (key == "entities" and text_key == "text" and "relations" not in record
           and all(isinstance(item, list) for item in items))
    entities = resolve_overlaps(mentions, options, report, fail)
    scores = {(m.start, m.end, m.type): m.score for m in mentions}
    entity_scores = (tuple(scores[entity] for entity in entities)
                     if any(m.score is not None for m in mentions) else None)
    sentence = Sentence(tuple(text), entities, located(path, line), entity_scores)
    return sentence, JSONL_FORMAT if own else FORMAT


def _mention(item: Any, field_name: str, fail: Callable[[str], DataError]) -> Mention:
    score = None
    if isinstance(item, list) and len(item) in (3, 4):
        start, end, entity_type = item[:3]
        score = item[3] if len(item) == 4 else None
    elif isinstance(item, dict):
        start = _first_key(item, ("start_offset", "start"))
        end = _first_key(item, ("end_offset", "end"))
        entity_type = _first_key(item, ("label", "type"))
        score = item.get("score")
        if start is None or end is None or entity_type is None:
            raise fail(f"{field_name} {_json(item)}: expected keys start_offset/end_offset/label or "
                       "start/end/type")
    else:
        raise fail(f'{field_name} {_json(item)}: expected [start, end, "TYPE"] (or [start, end, "TYPE", score])')
    for name, offset in (("start", start), ("end", end)):
        if type(offset) is not int:
            raise fail(f"{field_name} {_json(item)}: {name} offset {_json(offset)} is not an integer")
    if score is not None and (type(score) not in (int, float) or not 0 <= score <= 1):
        raise fail(f"{field_name} {_json(item)}: score {_json(score)} is not a number from 0 to 1")
    return Mention(start, end, check_type(entity_type, field_name, fail), field_name,
                   score=None if score is None else float(score))


def _first_key(mapping: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((mapping[k] for k in keys if k in mapping), None)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def to_json_line(sentence: Sentence) -> str:
    """One sentence as the project's JSON Lines, with character offsets and where it was read from.

    Tokens are joined as they are, so the offsets count characters even for multi-character tokens.
    """
    offsets = [0]
    for token in sentence.tokens:
        offsets.append(offsets[-1] + len(token))
    entities = [[offsets[e.start], offsets[e.end], e.type] for e in sentence.entities]
    return json.dumps({"text": "".join(sentence.tokens), "entities": entities, "read_from": sentence.source},
                      ensure_ascii=False) + "\n"
