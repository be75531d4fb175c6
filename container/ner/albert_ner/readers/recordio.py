"""SageMaker Pipe mode input: RecordIO-framed records read from a channel's FIFO.

In Pipe mode SageMaker streams a channel into the named pipe ``/opt/ml/input/data/<channel>_<epoch>``
instead of copying files. With ``RecordWrapperType: RecordIO``, and always for an augmented manifest,
each record is framed the way MXNet's RecordIO frames it: a little-endian uint32 magic number
``0xced7230a``, a uint32 whose low 29 bits are the payload length and high 3 bits a continuation flag
(0: a whole record; 1, 2, 3: first, middle and last part of a record split where its payload held the
magic number, which the reader puts back between the parts), the payload, then zero bytes up to a multiple
of 4.

An augmented manifest with ``AttributeNames: ["source", "<label attribute>"]`` arrives as one record per
attribute, in that order, line after line: the source text (as it is, or as a JSON string), then the label
attribute's JSON object. :func:`manifest_lines` puts the lines back together so that
:mod:`~albert_ner.readers.ground_truth` reads them exactly as it reads the manifest file in File mode.
A stream without RecordIO framing is one file's content (a ``RecordWrapperType`` of None).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from typing import Any

from albert_ner.errors import DataError
from albert_ner.files import PathLike

MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", MAGIC)
_LENGTH_MASK = (1 << 29) - 1


def is_recordio(data: bytes) -> bool:
    return data[:4] == _MAGIC_BYTES


def frame(payload: bytes) -> bytes:
    """One whole record as SageMaker frames it (for tests and for users preparing Pipe-mode input)."""
    padding = -len(payload) % 4
    return _MAGIC_BYTES + struct.pack("<I", len(payload)) + payload + b"\0" * padding


def records(data: bytes, path: PathLike) -> Iterator[bytes]:
    """The payloads of a RecordIO stream, multi-part records joined; errors name the record's number."""
    position, number, parts = 0, 0, []
    while position < len(data):
        number += 1
        if len(data) - position < 8:
            raise DataError(f"RecordIO record {number}: the stream ends inside a record header", path)
        magic, header = struct.unpack_from("<II", data, position)
        if magic != MAGIC:
            raise DataError(f"RecordIO record {number} (byte {position}): magic number 0x{magic:08x}, expected "
                            f"0x{MAGIC:08x}", path)
        flag, length = header >> 29, header & _LENGTH_MASK
        start = position + 8
        if start + length > len(data):
            raise DataError(f"RecordIO record {number}: {length} bytes announced, {len(data) - start} left", path)
        parts.append(data[start:start + length])
        position = start + length + (-length % 4)
        if flag in (0, 3):
            yield _MAGIC_BYTES.join(parts)
            parts = []
        elif flag not in (1, 2):
            raise DataError(f"RecordIO record {number}: unknown continuation flag {flag}", path)
    if parts:
        raise DataError("RecordIO stream ends inside a multi-part record", path)


def manifest_lines(payloads: list[bytes], path: PathLike, attribute: str) -> list[tuple[int, Any]] | None:
    """An augmented manifest's records regrouped into manifest lines, or None when it is not one.

    A label attribute is recognised as a JSON object with ``annotations``, a metadata attribute as one with
    ``job-name``; every other record starts a new line as its source text. The label attribute is put
    back under ``attribute``, its name in the manifest (the stream does not carry it).
    """
    lines: list[tuple[int, dict[str, Any]]] = []
    for number, payload in enumerate(payloads, 1):
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as error:
            raise DataError(f"RecordIO record {number} is not UTF-8 text ({error.reason} at byte {error.start})",
                            path) from None
        value = _json(text)
        if isinstance(value, dict) and ("annotations" in value or "job-name" in value):
            if not lines:
                raise DataError(f"RecordIO record {number}: a label attribute before any source text; the "
                                'channel\'s AttributeNames must start with "source"', path)
            line = lines[-1][1]
            key = f"{attribute}-metadata" if "job-name" in value else attribute
            if key in line:
                raise DataError(f"RecordIO record {number}: a second {key} for manifest line {len(lines)}", path)
            line[key] = value
        else:
            lines.append((len(lines) + 1, {"source": value if isinstance(value, str) else text}))
    if not any(len(line) > 1 for _, line in lines):
        return None
    return lines


def _json(text: str) -> Any:
    if text.lstrip()[:1] not in ('"', "{"):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None
