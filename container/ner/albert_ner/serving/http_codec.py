"""The HTTP side of ``/invocations``: which bodies are read (``Content-Type``), how their texts are found,
which answer a client gets (``Accept``), and how entities are rendered; client errors as :class:`RequestError`.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from albert_ner.text_records import text_of

JSON = "application/json"
JSON_LINES = "application/jsonlines"
TEXT = "text/plain"
_JSON_LINES_ALIASES = {JSON_LINES, "application/x-jsonlines", "application/jsonl", "application/x-ndjson"}
SUPPORTED_CONTENT_TYPES = (JSON, JSON_LINES, TEXT)
SUPPORTED_ACCEPT = (JSON, JSON_LINES)


class RequestError(Exception):
    """A client error: HTTP status and a message for the response body."""

    def __init__(self, status: int, message: str, headers: Sequence[tuple[str, str]] = ()):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = list(headers)


def media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def check_content_type(content_type: str) -> None:
    """415 for a body this server cannot read: checked before the body is, so nothing is read in vain."""
    if content_type not in SUPPORTED_CONTENT_TYPES and content_type not in _JSON_LINES_ALIASES:
        raise RequestError(415, f"unsupported Content-Type {content_type or '(none)'!r}; supported: "
                                + ", ".join(SUPPORTED_CONTENT_TYPES))


class RequestTexts:
    """The texts of a request body, checked whole when made (a bad line is a 400 before any work starts)
    and read again, lazily, when iterated: a body of millions of lines is never held as millions of
    strings at once (batch transform's bodies go through the model in chunks)."""

    def __init__(self, body: str, content_type: str):
        check_content_type(content_type)
        self._body = body
        self._content_type = content_type
        self.single = False
        self._items: list[str] | None = None  # a JSON document's texts, parsed once
        if content_type == JSON:
            self._items, self.single = _texts_of_json(body)
        self.count = sum(1 for _ in self)

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[str]:
        if self._items is not None:
            texts: Iterable[str] = self._items
        elif self._content_type == TEXT:
            texts = _lines(self._body)
        else:
            texts = (_text_of_json_line(line, number) for number, line in enumerate(_lines(self._body), start=1))
        for number, text in enumerate(texts, start=1):
            require_unicode(text, number)
            yield text

    def chunks(self, size: int) -> Iterator[list[str]]:
        """The texts in lists of at most ``size``."""
        iterator = iter(self)
        while chunk := list(itertools.islice(iterator, size)):
            yield chunk


def require_unicode(text: str, number: int) -> None:
    """A JSON ``\\ud800`` escape decodes to a lone surrogate, which is no character: it cannot be answered
    in UTF-8, so it is the client's error, named here rather than failing the answer."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise RequestError(400, f"text {number}: character {error.start} is a lone surrogate "
                                f"(U+{ord(text[error.start]):04X}), not Unicode text") from None


def _lines(body: str) -> Iterator[str]:
    """The body's lines, one at a time (``\\n`` or ``\\r\\n``; the newline that ends the last line ends it)."""
    stop = len(body) - 1 if body.endswith("\n") else len(body)
    start = 0
    while True:
        end = body.find("\n", start, stop)
        line = body[start:stop if end < 0 else end]
        yield line[:-1] if line.endswith("\r") else line
        if end < 0:
            return
        start = end + 1


def load_json(text: str, where: str = "") -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        position = f"line {error.lineno} column {error.colno}" if not where else f"{where} column {error.colno}"
        raise RequestError(400, f"malformed JSON at {position} (character {error.pos}): {error.msg}") from None
    except RecursionError:
        raise RequestError(400, f"JSON nested too deeply{' at ' + where if where else ''}: thousands of levels "
                                "of [ or { are not a request") from None


def _texts_of_json(body: str) -> tuple[list[str], bool]:
    value = load_json(body)
    if isinstance(value, dict) and "text" in value:
        return [_text_of(value, "the request")], True
    if isinstance(value, dict) and "instances" in value:
        value = value["instances"]
        if not isinstance(value, list):
            raise RequestError(400, f'"instances" must be a JSON list, found {type(value).__name__}')
    if not isinstance(value, list):
        raise RequestError(400, 'expected {"text": "..."}, {"instances": [...]} or a JSON list of texts')
    return [_text_of(item, f"instance {index}") for index, item in enumerate(value)], False


def _text_of(value: Any, what: str) -> str:
    try:
        return text_of(value)
    except ValueError as error:
        raise RequestError(400, f"{what}: {error}") from None


def _text_of_json_line(line: str, number: int) -> str:
    if not line.strip():
        return ""
    return _text_of(load_json(line, f"line {number}"), f"line {number}")


def output_type(accept: str | None, content_type: str) -> str:
    """The response media type the ``Accept`` header asks for; 406 if it allows none we write."""
    default = JSON if content_type == JSON else JSON_LINES
    if not accept or not accept.strip():
        return default
    for item in sorted(_accept_items(accept), key=lambda item: -item[1]):
        kind = item[0]
        if kind in ("*/*", "application/*"):
            return default
        if kind == JSON or kind in _JSON_LINES_ALIASES:
            return kind
    raise RequestError(406, f"cannot answer with Accept {accept!r}; supported: " + ", ".join(SUPPORTED_ACCEPT))


def _accept_items(accept: str) -> Iterable[tuple[str, float]]:
    for part in accept.split(","):
        kind, *parameters = part.split(";")
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if kind.strip() and quality > 0:
            yield kind.strip().lower(), quality


def render(predictions: list[list[dict]], single: bool, kind: str) -> bytes:
    return b"".join(render_chunks([predictions], single, kind))


def render_chunks(chunks: Iterable[list[list[dict]]], single: bool, kind: str) -> Iterator[bytes]:
    """The answer to a request, a piece per chunk of its texts' entities (joined, the whole answer)."""
    if kind != JSON:
        for predictions in chunks:
            yield "".join(json.dumps({"entities": entities}, ensure_ascii=False) + "\n"
                          for entities in predictions).encode("utf-8")
        return
    if single:
        (predictions,) = chunks
        yield json.dumps({"entities": predictions[0]}, ensure_ascii=False).encode("utf-8")
        return
    yield b'{"predictions": ['
    separator = ""
    for predictions in chunks:
        for entities in predictions:
            yield (separator + json.dumps({"entities": entities}, ensure_ascii=False)).encode("utf-8")
            separator = ", "
    yield b"]}"
