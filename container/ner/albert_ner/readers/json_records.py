"""JSON input in every layout the labelling tools write, as records with the line each starts on.

Exports come as JSON Lines (doccano, Ground Truth, CLUENER's own files), as one JSON array (Label Studio,
JSON-MIN), or as JSON objects pretty-printed one after another (CLUENER files re-saved by hand). All three
read the same way here: values are decoded one by one from the text, so every record keeps the line it
starts on for messages, whatever the layout.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from albert_ner.errors import DataError
from albert_ner.files import PathLike

_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\r\n"


def looks_like_json(text: str) -> bool:
    """JSON when the first value decodes, or when the first line can only be the start of one (so that a
    broken JSON file gets a JSON error, while a CoNLL file whose first token is "{" stays CoNLL)."""
    stripped = text.lstrip(_WHITESPACE)
    if stripped[:1] not in ("{", "["):
        return False
    try:
        _DECODER.raw_decode(stripped)
        return True
    except json.JSONDecodeError:
        first = stripped.split("\n", 1)[0].strip()
        return first in ("{", "[") or (first.startswith("{") and first.endswith("}"))


def json_records(text: str, path: PathLike) -> Iterator[tuple[int, Any]]:
    """(line, value) of every top-level value, or of every element when the text is a single JSON array."""
    line = _LineCounter(text)
    position = _skip(text, 0)
    if text.startswith("[", position):
        yield from _array_elements(text, position, path, line)
        return
    while position < len(text):
        value, end = _decode(text, position, path, line(position))
        yield line(position), value
        position = _skip(text, end)


def _array_elements(text: str, position: int, path: PathLike, line: _LineCounter) -> Iterator[tuple[int, Any]]:
    position = _skip(text, position + 1)
    if text.startswith("]", position):
        position = _skip(text, position + 1)
    else:
        while True:
            value, end = _decode(text, position, path, line(position))
            yield line(position), value
            position = _skip(text, end)
            if text.startswith(",", position):
                position = _skip(text, position + 1)
                continue
            if text.startswith("]", position):
                position = _skip(text, position + 1)
                break
            raise DataError("invalid JSON: expected ',' or ']' after an array element", path, line(position))
    if position < len(text):
        raise DataError("invalid JSON: text after the closing ']' of the array", path, line(position))


def _decode(text: str, position: int, path: PathLike, start_line: int) -> tuple[Any, int]:
    """One value; an error names the line the value starts on, where a truncated JSON line is."""
    try:
        return _DECODER.raw_decode(text, position)
    except json.JSONDecodeError as error:
        where = (f"at column {error.colno}" if error.lineno == start_line
                 else f"in the value that starts on this line (at line {error.lineno}, column {error.colno})")
        raise DataError(f"invalid JSON {where}: {error.msg}", path, start_line) from None
    except RecursionError:
        raise DataError("JSON nested too deeply to be a record (thousands of levels of [ or {)", path,
                        start_line) from None


def _skip(text: str, position: int) -> int:
    while position < len(text) and text[position] in _WHITESPACE:
        position += 1
    return position


class _LineCounter:
    """The line of a position, counted on from the previous one asked (positions only grow)."""

    def __init__(self, text: str):
        self._text, self._position, self._line = text, 0, 1

    def __call__(self, position: int) -> int:
        self._line += self._text.count("\n", self._position, position)
        self._position = position
        return self._line
