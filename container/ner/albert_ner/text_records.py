"""The text of one JSON input record, by one rule for ``serve``, ``albert-ner predict``/``select`` and the
job's ``unlabelled`` channel; and raw text read line by line.

A record is a JSON string, or an object holding the text under ``"text"`` or, failing that, ``"source"``
(the key of a SageMaker Ground Truth input manifest line), so a manifest made for labelling can be tagged
as it is, by the endpoint or the command line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from albert_ner.errors import DataError

#: The keys an object's text is looked for under, in this order.
TEXT_KEYS = ("text", "source")


def text_of(value: Any) -> str:
    """The text of a decoded JSON record; ValueError, with a message for the user, when it holds none."""
    if isinstance(value, dict):
        key = next((key for key in TEXT_KEYS if key in value), None)
        if key is None:
            raise ValueError(f'an object needs a "text" (or "source") key, found keys {sorted(value)}')
        value = value[key]
    if not isinstance(value, str):
        raise ValueError(f'expected a string or an object with a "text" (or "source") string, found '
                         f'{type(value).__name__}')
    return value


def read_texts(path: Path) -> Iterator[str]:
    """Sentences from a text file (one per line) or JSON Lines (a string, ``{"text": ...}``, or a Ground
    Truth manifest's ``{"source": ...}`` per line).

    Lines end at LF, CRLF or a lone CR; a UTF-8 BOM is dropped. The file is decoded line by line, so an
    undecodable byte is reported on its own line, however far into the file it sits.
    """
    number = 0
    with open(path, "rb") as stream:
        for raw in stream:
            try:
                decoded = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataError(f"not UTF-8: byte 0x{raw[error.start]:02x} at byte {error.start + 1} of the line "
                                f"is {error.reason}", path, number + 1) from None
            if number == 0:
                decoded = decoded.removeprefix("\ufeff")
            for line in decoded.removesuffix("\n").removesuffix("\r").split("\r"):
                number += 1
                yield _text_of_json_line(line, path, number) if line.lstrip().startswith(("{", '"')) else line


def _text_of_json_line(line: str, path: Path, number: int) -> str:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataError(f"invalid JSON at column {error.colno}: {error.msg}", path, number) from None
    try:
        return text_of(value)
    except ValueError as error:
        raise DataError(str(error), path, number) from None
