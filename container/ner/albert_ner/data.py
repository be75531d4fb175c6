"""Reading labelled sentences: CoNLL columns or JSON Lines, one file or a whole channel.

Readers turn every input format into :class:`Sentence` objects holding tokens and entity spans, so the
rest of the package never sees a tag scheme or a file format. Input is checked strictly: every problem is
a :class:`~albert_ner.errors.DataError` naming the file and line (and the JSON field), because a training
job that silently drops or "fixes" data trains on something the user did not give it.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from albert_ner.errors import DataError
from albert_ner.files import PathLike, read_text
from albert_ner.tag_schemes import (
    SCHEME_PREFIXES,
    SCHEMES,
    Entity,
    TagSequenceError,
    parse_tag,
    parse_tags,
    scheme_for_prefixes,
)

_REPAIR_LOCATIONS_KEPT = 20


@dataclass(frozen=True)
class Sentence:
    """One labelled sentence: its tokens (one character each for Chinese) and entity spans over them."""

    tokens: tuple[str, ...]
    entities: tuple[Entity, ...]
    source: str = ""  # "path:line" where it starts, for messages


@dataclass
class ReadReport:
    """What a reader found, for the training log."""

    files: list[str] = field(default_factory=list)
    sentences: int = 0
    tokens: int = 0
    repairs: int = 0  # entities whose tags were repaired (repair=True only)
    scheme: str = ""  # "bio", "bioes", "bmes", "jsonl", or several joined by "+" for a channel
    repair_locations: list[str] = field(default_factory=list)  # "path:line" of the first repairs


def _require_content(text: str, path: PathLike) -> None:
    if not text.strip():
        raise DataError("empty file: no sentences", path)


def read_conll(
    path: PathLike, scheme: str | None = None, repair: bool = False
) -> tuple[list[Sentence], ReadReport]:
    """Read a CoNLL-style file: a token and its tag per line, blank lines between sentences.

    Columns are separated by spaces or tabs; with more than two columns the first is the token and the last
    the tag (CoNLL-2003 layout). ``-DOCSTART-`` lines end a sentence and are otherwise ignored; CRLF line
    ends and a UTF-8 BOM are accepted. The scheme is detected from the file's tag prefixes unless forced,
    and one file must not mix schemes. See :func:`~albert_ner.tag_schemes.tags_to_entities` for
    ``repair``.
    """
    text = read_text(path)
    _require_content(text, path)
    return _parse_conll(text, path, scheme, repair)


def _parse_conll(
    text: str, path: PathLike, scheme: str | None, repair: bool
) -> tuple[list[Sentence], ReadReport]:
    if scheme is not None and scheme not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    raw_sentences: list[tuple[int, list[str], list[str]]] = []  # (first line, tokens, tags)
    tokens: list[str] = []
    tags: list[str] = []
    first_line = 0
    known_tags: set[str] = set()  # tags already checked
    first_seen: dict[str, tuple[int, str]] = {}  # prefix -> (line, tag) where it first appeared

    for line_number, line in enumerate(text.split("\n"), 1):
        if line.endswith("\r"):
            line = line[:-1]
        if "\r" in line:
            raise DataError("carriage return inside a line: the file seems to use CR-only line ends", path, line_number)
        # Tabs, when present, are the only separator, so that a token may be a space character.
        fields = [f for f in (line.split("\t") if "\t" in line else line.split(" ")) if f]
        if not fields or fields[0] == "-DOCSTART-" or (len(fields) == 1 and not fields[0].strip(" ")):
            if tokens:
                raw_sentences.append((first_line, tokens, tags))
                tokens, tags = [], []
            continue
        if len(fields) < 2:
            raise DataError(
                f"line has no tag: {line!r}; expected a token and its tag separated by a space or tab",
                path,
                line_number,
            )
        tag = fields[-1].strip(" ")
        if tag not in known_tags:
            _check_new_tag(tag, scheme, first_seen, path, line_number)
            known_tags.add(tag)
        if not tokens:
            first_line = line_number
        tokens.append(fields[0].strip(" ") or fields[0])
        tags.append(tag)
    if tokens:
        raw_sentences.append((first_line, tokens, tags))
    if not raw_sentences:
        raise DataError("no sentences: the file has only blank and -DOCSTART- lines", path)

    scheme = scheme or scheme_for_prefixes(first_seen)
    sentences = []
    report = ReadReport(files=[os.fspath(path)], scheme=scheme)
    for first_line, tokens, tags in raw_sentences:
        try:
            entities, repaired = parse_tags(tags, scheme, repair)
        except TagSequenceError as error:
            hint = "" if repair else "; reading with tag repair enabled would fix it"
            raise DataError(f"{error.reason}{hint}", path, first_line + error.index) from None
        sentences.append(Sentence(tuple(tokens), tuple(entities), f"{os.fspath(path)}:{first_line}"))
        report.tokens += len(tokens)
        report.repairs += len(repaired)
        for index in repaired[: _REPAIR_LOCATIONS_KEPT - len(report.repair_locations)]:
            report.repair_locations.append(f"{os.fspath(path)}:{first_line + index}")
    report.sentences = len(sentences)
    return sentences, report


def _check_new_tag(
    tag: str, scheme: str | None, first_seen: dict[str, tuple[int, str]], path: PathLike, line_number: int
) -> None:
    """Validate a tag seen for the first time in a file, recording its prefix in ``first_seen``.

    Scheme conflicts are found here, at the first line that breaks the file's scheme, so the message can
    point at it and at the earlier tag it clashes with.
    """
    try:
        prefix = parse_tag(tag)[0]
    except DataError as error:
        raise DataError(error.reason, path, line_number) from None
    if prefix == "O" or prefix in first_seen:
        return
    if scheme is not None:
        if prefix not in SCHEME_PREFIXES[scheme]:
            raise DataError(
                f"tag {tag!r} is not part of the {scheme} scheme the file is read with, whose prefixes are "
                f"{', '.join(p + '-' for p in SCHEME_PREFIXES[scheme])}",
                path,
                line_number,
            )
    else:
        for other, (other_line, other_tag) in sorted(first_seen.items(), key=lambda item: item[1]):
            try:
                scheme_for_prefixes({other, prefix})
            except DataError as error:
                raise DataError(
                    f"{error.reason}: {tag!r} here, {other_tag!r} at line {other_line}; a file must use one "
                    "of BIO (B/I), BIOES (B/I/E/S) or BMES (B/M/E/S)",
                    path,
                    line_number,
                ) from None
    first_seen[prefix] = (line_number, tag)


def read_jsonl(path: PathLike) -> tuple[list[Sentence], ReadReport]:
    """Read JSON Lines: ``{"text": "...", "entities": [[start, end, "TYPE"], ...]}`` per line.

    Offsets are character offsets into ``text``, end exclusive; tokens are the characters of ``text``.
    doccano's exports are read as well: the key ``label`` instead of ``entities``, and entities written as
    objects ``{"start_offset", "end_offset", "label"}`` (or ``{"start", "end", "type"}``).
    """
    text = read_text(path)
    _require_content(text, path)
    return _parse_jsonl(text, path)


def _parse_jsonl(text: str, path: PathLike) -> tuple[list[Sentence], ReadReport]:
    sentences = []
    for line_number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"invalid JSON at column {error.colno}: {error.msg}", path, line_number) from None
        sentences.append(_record_to_sentence(record, f"{os.fspath(path)}:{line_number}", path, line_number))
    report = ReadReport(
        files=[os.fspath(path)], sentences=len(sentences), tokens=sum(len(s.tokens) for s in sentences), scheme="jsonl"
    )
    return sentences, report


def _record_to_sentence(record: Any, source: str, path: PathLike, line_number: int) -> Sentence:
    def fail(message: str) -> DataError:
        return DataError(message, path, line_number)

    if not isinstance(record, dict):
        raise fail(f'expected a JSON object {{"text": ..., "entities": ...}}, found {_json(record)[:80]}')
    if "text" not in record:
        raise fail(f'missing "text" (keys found: {", ".join(record) or "none"})')
    text = record["text"]
    if not isinstance(text, str) or not text:
        raise fail(f'"text" must be a non-empty string, found {_json(text)[:80]}')
    key = next((k for k in ("entities", "label", "labels") if k in record), None)
    if key is None:
        raise fail('missing "entities" (or doccano\'s "label"): expected "entities": [[start, end, "TYPE"], ...]')
    if not isinstance(record[key], list):
        raise fail(f'"{key}" must be a list of [start, end, "TYPE"], found {_json(record[key])[:80]}')
    located = sorted(
        (_json_entity(item, len(text), f"{key}[{i}]", fail), f"{key}[{i}]") for i, item in enumerate(record[key])
    )
    for (previous, previous_field), (entity, entity_field) in itertools.pairwise(located):
        if entity.start < previous.end:
            raise fail(
                f"{entity_field} {list(entity)} overlaps {previous_field} {list(previous)}; nested or "
                "overlapping entities cannot be tagged"
            )
    return Sentence(tuple(text), tuple(entity for entity, _ in located), source)


def _json_entity(item: Any, text_length: int, field_name: str, fail: Callable[[str], DataError]) -> Entity:
    """One entity in any of the accepted forms, checked against the text it annotates."""
    if isinstance(item, list) and len(item) == 3:
        start, end, entity_type = item
    elif isinstance(item, dict):
        start = _first_key(item, ("start", "start_offset"))
        end = _first_key(item, ("end", "end_offset"))
        entity_type = _first_key(item, ("type", "label"))
        if start is None or end is None or entity_type is None:
            raise fail(
                f"{field_name} {_json(item)}: expected keys start/end/type or start_offset/end_offset/label"
            )
    else:
        raise fail(f'{field_name} {_json(item)}: expected [start, end, "TYPE"]')
    for name, offset in (("start", start), ("end", end)):
        if type(offset) is not int:
            raise fail(f"{field_name} {_json(item)}: {name} offset {_json(offset)} is not an integer")
    if not isinstance(entity_type, str) or not entity_type or entity_type != entity_type.strip():
        raise fail(f"{field_name} {_json(item)}: the type must be a non-empty string without edge spaces")
    if not 0 <= start < end <= text_length:
        raise fail(
            f"{field_name} {_json(item)} is out of range: need 0 <= start < end <= {text_length}, the length of "
            '"text"'
        )
    return Entity(start, end, entity_type)


def _first_key(mapping: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((mapping[k] for k in keys if k in mapping), None)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def read_data_file(
    path: PathLike, scheme: str | None = None, repair: bool = False
) -> tuple[list[Sentence], ReadReport]:
    """Read one file as JSON Lines when its first non-blank line is a JSON object, else as CoNLL columns.

    ``scheme`` and ``repair`` apply to CoNLL files only; JSON Lines carry spans, not tags.
    """
    text = read_text(path)
    _require_content(text, path)
    first = next(line.strip() for line in text.split("\n") if line.strip())
    if first.startswith("{") and first.endswith("}"):
        return _parse_jsonl(text, path)
    return _parse_conll(text, path, scheme, repair)


def read_channel(
    directory: PathLike, scheme: str | None = None, repair: bool = False
) -> tuple[list[Sentence], ReadReport]:
    """Read every data file under ``directory`` (a SageMaker channel), in sorted path order.

    Hidden files and directories (names starting with ".") are skipped. Each file is read with
    :func:`read_data_file`, so CoNLL files with different schemes and JSON Lines files may share a channel.
    ``directory`` may also be a single file.
    """
    root = Path(directory)
    if root.is_file():
        paths = [root]
    elif root.is_dir():
        paths = sorted(
            path
            for path in root.rglob("*")
            if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts)
        )
    else:
        raise DataError("no such file or directory", root)
    if not paths:
        raise DataError("no data files in this directory (hidden files are skipped)", root)

    sentences: list[Sentence] = []
    total = ReadReport()
    schemes = set()
    for path in paths:
        file_sentences, report = read_data_file(path, scheme, repair)
        sentences.extend(file_sentences)
        total.files.extend(report.files)
        total.sentences += report.sentences
        total.tokens += report.tokens
        total.repairs += report.repairs
        total.repair_locations.extend(report.repair_locations[: _REPAIR_LOCATIONS_KEPT - len(total.repair_locations)])
        schemes.add(report.scheme)
    total.scheme = "+".join(sorted(schemes))
    return sentences, total
