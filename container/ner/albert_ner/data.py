"""Reading labelled sentences from one file, a whole channel, or a Pipe-mode FIFO, whatever the format:
the channel walk and the format dispatch.

Readers turn every input format into :class:`~albert_ner.sentences.Sentence` objects holding tokens and
entity spans, so the rest of the package never sees a tag scheme or a file format. A file's format is told
from its content, never its name: CoNLL columns, the project's JSON Lines and doccano's exports, SageMaker
Ground Truth manifests, CLUENER2020, Label Studio and brat standoff (see :mod:`albert_ner.readers`).
Input is checked strictly: every problem is a :class:`~albert_ner.errors.DataError` naming the file and
line (and the JSON field), because a training job that silently drops or "fixes" data trains on something
the user did not give it; what a format lets a reader leave out (relations, cancelled annotations) is
counted in the :class:`ReadReport`.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from types import ModuleType
from typing import Any

from albert_ner.errors import DataError
from albert_ner.files import PathLike, channel_files, read_text
from albert_ner.readers import brat, cluener, conll, doccano, ground_truth, label_studio, recordio
from albert_ner.readers.json_records import json_records, looks_like_json
from albert_ner.readers.spans import ReadOptions, ReadReport, require_content
from albert_ner.sentences import Sentence

__all__ = ["OUTPUT_FORMATS", "ReadOptions", "ReadReport", "formatted", "read_channel", "read_data_file", "read_jsonl",
           "read_pipe"]

#: JSON readers in the order their shapes are tried on a file's first record; doccano's (and the project's
#: own JSON Lines) comes last and gives the detailed error when nothing fits.
_JSON_READERS: tuple[ModuleType, ...] = (ground_truth, label_studio, cluener, doccano)
_HEAD_BYTES = 1 << 16
#: What :func:`formatted` writes: CoNLL columns, or the project's JSON Lines.
OUTPUT_FORMATS = ("conll", "jsonl")
_BESIDE_BRAT = "files beside brat documents that hold no labels (README, LICENSE, ...)"

log = logging.getLogger("albert_ner.data")


def read_jsonl(path: PathLike, **options: Any) -> tuple[list[Sentence], ReadReport]:
    """Read JSON objects with a text and entity spans: the project's JSON Lines, doccano, Ground Truth,
    CLUENER or Label Studio (detected from the first record; see :mod:`albert_ner.readers`).

    The project's own form is ``{"text": "...", "entities": [[start, end, "TYPE"], ...]}`` per line:
    character offsets into ``text``, end exclusive; tokens are the characters of ``text``. ``options`` are
    those of :func:`read_channel`.
    """
    text = read_text(path)
    require_content(text, path)
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
    require_content(text, path)
    if brat.is_configuration(text):
        report = ReadReport(files=[os.fspath(path)], scheme=brat.FORMAT)
        report.skipped["brat configuration files"] += 1
        return [], report
    return _parse_text(text, path, options)


def _parse_text(text: str, path: PathLike, options: ReadOptions) -> tuple[list[Sentence], ReadReport]:
    if looks_like_json(text):
        return _parse_json(text, path, options)
    return conll.parse_conll(text, path, options.scheme, options.repair)


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
    if not root.exists():
        raise DataError("no such file or directory", root)
    paths = channel_files(root)
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


def formatted(sentence: Sentence, output_format: str, scheme: str) -> str:
    """One sentence as ``conll`` lines tagged in ``scheme`` (:func:`~albert_ner.readers.conll.to_conll`)
    or as a ``jsonl`` line (:func:`~albert_ner.readers.doccano.to_json_line`), blank line or newline included."""
    if output_format == "conll":
        return conll.to_conll(sentence, scheme)
    if output_format == "jsonl":
        return doccano.to_json_line(sentence)
    raise ValueError(f"unknown output format {output_format!r}; expected one of {', '.join(OUTPUT_FORMATS)}")
