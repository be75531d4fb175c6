"""Reading labelled sentences from one file, a whole channel, or a Pipe-mode FIFO, whatever the format.

Readers turn every input format into :class:`Sentence` objects holding tokens and entity spans, so the
rest of the package never sees a tag scheme or a file format. A file's format is told from its content,
never its name: CoNLL columns (read here), the project's JSON Lines and doccano's exports, SageMaker
Ground Truth manifests, CLUENER2020, Label Studio and brat standoff (see :mod:`albert_ner.readers`).
Input is checked strictly: every problem is a :class:`~albert_ner.errors.DataError` naming the file and
line (and the JSON field), because a training job that silently drops or "fixes" data trains on something
the user did not give it; what a format lets a reader leave out (relations, cancelled annotations) is
counted in the :class:`ReadReport`.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path
from types import ModuleType
from typing import Any

from albert_ner.errors import DataError
from albert_ner.files import PathLike, read_text
from albert_ner.readers import brat, cluener, doccano, ground_truth, label_studio, recordio
from albert_ner.readers.json_records import json_records, looks_like_json
from albert_ner.readers.spans import REPAIR_LOCATIONS_KEPT, ReadOptions, ReadReport, Sentence
from albert_ner.tag_schemes import (
    SCHEME_PREFIXES,
    SCHEMES,
    TagSequenceError,
    entities_to_tags,
    parse_tag,
    parse_tags,
    scheme_for_prefixes,
)

__all__ = ["ReadOptions", "ReadReport", "Sentence", "read_channel", "read_conll", "read_data_file", "read_jsonl",
           "read_pipe", "to_conll", "to_json_line"]

#: JSON readers in the order their shapes are tried on a file's first record; doccano's (and the project's
#: own JSON Lines) comes last and gives the detailed error when nothing fits.
_JSON_READERS: tuple[ModuleType, ...] = (ground_truth, label_studio, cluener, doccano)
_HEAD_BYTES = 1 << 16
_BESIDE_BRAT = "files beside brat documents that hold no labels (README, LICENSE, ...)"

log = logging.getLogger("albert_ner.data")


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
        report.repairs += len(repaired)
        for index in repaired[: REPAIR_LOCATIONS_KEPT - len(report.repair_locations)]:
            report.repair_locations.append(f"{os.fspath(path)}:{first_line + index}")
    report.count(sentences)
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


def read_jsonl(path: PathLike, **options: Any) -> tuple[list[Sentence], ReadReport]:
    """Read JSON objects with a text and entity spans: the project's JSON Lines, doccano, Ground Truth,
    CLUENER or Label Studio (detected from the first record; see :mod:`albert_ner.readers`).

    The project's own form is ``{"text": "...", "entities": [[start, end, "TYPE"], ...]}`` per line:
    character offsets into ``text``, end exclusive; tokens are the characters of ``text``. ``options`` are
    those of :func:`read_channel`.
    """
    text = read_text(path)
    _require_content(text, path)
    return _parse_json(text, path, ReadOptions(**options))


def _parse_json(text: str, path: PathLike, options: ReadOptions) -> tuple[list[Sentence], ReadReport]:
    records = list(json_records(text, path))
    if not records:
        raise DataError("no records: the JSON array is empty", path)
    first = records[0][1]
    reader = next((reader for reader in _JSON_READERS if reader.matches(first)), doccano)
    sentences, report = reader.read_records(records, path, options)
    report.files = [os.fspath(path)]
    report.count(sentences)
    return sentences, report


def read_data_file(path: PathLike, scheme: str | None = None, repair: bool = False,
                   **options: Any) -> tuple[list[Sentence], ReadReport]:
    """Read one file in whichever format its content is (see the module docstring).

    ``scheme`` and ``repair`` apply to CoNLL files only; the other formats carry spans, not tags. A brat
    annotation file is read with its text (``NAME.ann`` with ``NAME.txt``), from either of the two.
    ``options`` are those of :func:`read_channel`.
    """
    return _read_file(Path(path), ReadOptions(scheme=scheme, repair=repair, **options))


def _read_file(path: Path, options: ReadOptions) -> tuple[list[Sentence], ReadReport]:
    text = read_text(path)
    partner = path.with_suffix(".ann")
    if path.suffix == ".txt" and partner.is_file() and _is_brat_annotations(partner, _head(partner)):
        return brat.read_document(partner, options)
    if _is_brat_annotations(path, text):
        return brat.read_document(path, options)
    _require_content(text, path)
    if brat.is_configuration(text):
        report = ReadReport(files=[os.fspath(path)], scheme=brat.FORMAT)
        report.skipped["brat configuration files"] += 1
        return [], report
    return _parse_text(text, path, options)


def _parse_text(text: str, path: PathLike, options: ReadOptions) -> tuple[list[Sentence], ReadReport]:
    if looks_like_json(text):
        return _parse_json(text, path, options)
    return _parse_conll(text, path, options.scheme, options.repair)


def _is_brat_annotations(path: Path, head: str) -> bool:
    """brat standoff by content; an empty file counts when it is NAME.ann beside NAME.txt (a document
    without annotations)."""
    if not head.strip():
        return path.suffix == ".ann" and brat.document_path(path).is_file()
    return brat.is_standoff(head)


def _head(path: Path) -> str:
    """The first complete lines of a file, enough to recognise a format without reading it all."""
    with open(path, "rb") as file:
        data = file.read(_HEAD_BYTES)
    if len(data) == _HEAD_BYTES and b"\n" in data:
        data = data[: data.rindex(b"\n")]
    return data.decode("utf-8", errors="replace")


def read_pipe(fifo: PathLike, options: ReadOptions) -> tuple[list[Sentence], ReadReport]:
    """Read a Pipe-mode channel from its FIFO (see :mod:`albert_ner.readers.recordio`).

    An augmented manifest's records are regrouped into manifest lines; other RecordIO records are each one
    S3 object's content, and an unframed stream is one file's.
    """
    with open(fifo, "rb") as stream:
        data = stream.read()
    if not data.strip():
        raise DataError("the Pipe-mode channel sent no data", fifo)
    if not recordio.is_recordio(data):
        return _parse_text(_decode(data, fifo), fifo, options)
    payloads = list(recordio.records(data, fifo))
    lines = recordio.manifest_lines(payloads, fifo, options.label_attribute or "label")
    if lines is not None:
        sentences, report = ground_truth.read_records(lines, fifo, options)
        report.files = [os.fspath(fifo)]
        report.count(sentences)
        return sentences, report
    total = ReadReport()
    sentences = []
    for number, payload in enumerate(payloads, 1):
        name = f"{os.fspath(fifo)} (record {number})"
        record_sentences, report = _parse_text(_decode(payload, name), name, options)
        sentences += record_sentences
        total.add(report)
    return sentences, total


def _decode(data: bytes, path: PathLike) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(f"not UTF-8: {error.reason} at byte offset {error.start}", path) from None


def read_channel(
    directory: PathLike,
    scheme: str | None = None,
    repair: bool = False,
    label_attribute: str | None = None,
    overlapping_entities: str = "error",
    utf16_offsets: bool = False,
) -> tuple[list[Sentence], ReadReport]:
    """Read every data file under ``directory`` (a SageMaker channel), in sorted path order.

    Hidden files and directories (names starting with ".") are skipped. Each file is read in the format its
    content shows, so formats may share a channel; a brat document's ``.txt`` is read with its ``.ann``.
    ``directory`` may also be a single file, or the FIFO of a Pipe-mode channel (:func:`read_pipe`).
    ``scheme`` and ``repair`` apply to CoNLL files; ``label_attribute`` names the Ground Truth label
    attribute; ``overlapping_entities`` (error, longest, first) and ``utf16_offsets`` are explained in
    :mod:`albert_ner.readers.spans`.
    """
    options = ReadOptions(scheme, repair, label_attribute, overlapping_entities, utf16_offsets)
    root = Path(directory)
    if root.exists() and stat.S_ISFIFO(root.stat().st_mode):
        return read_pipe(root, options)
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
    documents = {brat.document_path(path) for path in paths if _is_brat_annotations(path, _head(path))}
    brat_directories = {path.parent for path in documents}
    brat_corpus = brat_directories | {parent for directory in brat_directories for parent in directory.parents}

    sentences: list[Sentence] = []
    total = ReadReport()
    for path in paths:
        if path in documents:
            continue  # read with its annotations
        try:
            file_sentences, report = _read_file(path, options)
        except DataError as error:
            # brat corpora ship a README and LICENSE beside (or above) the documents: there, plain text that
            # does not read as CoNLL is documentation, skipped by name in the log. Every other failure stands.
            head = _head(path)
            if (path.parent not in brat_corpus or _is_brat_annotations(path, head)
                    or looks_like_json(head)):
                raise
            log.warning("skipped %s, beside brat documents: it holds no labels (%s)", path, error.reason)
            total.files.append(os.fspath(path))
            total.skipped[_BESIDE_BRAT] += 1
            continue
        sentences.extend(file_sentences)
        total.add(report)
    return sentences, total


def to_conll(sentence: Sentence, scheme: str) -> str:
    """One sentence as CoNLL lines (``token<TAB>tag``) and the blank line after it, tagged in ``scheme``.

    Whitespace tokens are written as one space (the tab keeps it a token): a line break cannot sit inside
    a CoNLL line, and the tokenizer reads every kind of whitespace as the same token anyway.
    """
    tags = entities_to_tags(len(sentence.tokens), sentence.entities, scheme)
    return "".join(f"{' ' if token.isspace() else token}\t{tag}\n"
                   for token, tag in zip(sentence.tokens, tags, strict=True)) + "\n"


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
