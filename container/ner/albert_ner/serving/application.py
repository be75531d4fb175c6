"""The WSGI application of ``serve``: routes, limits and errors, with the model loaded in the background.

Each worker loads the model in a background thread, so ``/ping`` answers at once: 503 while loading, 200
once the model can answer, 500 if loading failed. The HTTP contract is in :mod:`albert_ner.serving`.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from albert_ner.environment import ServingSettings
from albert_ner.errors import ModelDirectoryError
from albert_ner.resources import MIB
from albert_ner.serving.batcher import DeadlineExceeded, DynamicBatcher, Submission
from albert_ner.serving.http_codec import (
    JSON,
    TEXT,
    RequestError,
    RequestTexts,
    check_content_type,
    media_type,
    output_type,
    render,
    render_chunks,
)

log = logging.getLogger("albert_ner.serving")

#: Texts of a batch-transform body handed to the batcher at a time (it cuts them into model batches).
STREAMED_CHUNK_TEXTS = 1024


class InferenceApp:
    """The WSGI application: routes, limits and errors; the model lives behind a :class:`DynamicBatcher`."""

    def __init__(self, settings: ServingSettings, load: Callable[[], Callable[[list[str]], list[Any]]]):
        self.settings = settings
        self.batcher: DynamicBatcher | None = None
        self.load_error: str | None = None
        self._loader = threading.Thread(target=self._load, args=(load,), name="model-loader", daemon=True)
        self._loader.start()

    def _load(self, load: Callable[[], Callable[[list[str]], list[Any]]]) -> None:
        started = time.monotonic()
        try:
            predict = load()
        except BaseException as error:  # noqa: BLE001 - reported by /ping and /invocations
            # Clients get the problem in the model directory's terms; the paths and the traceback go to the log.
            self.load_error = (str(error) if isinstance(error, ModelDirectoryError)
                               else f"{type(error).__name__}; the details are in the server's log")
            log.exception("cannot load the model from %s", self.settings.model_dir)
            return
        self.batcher = DynamicBatcher(predict, self.settings.max_batch_size, self.settings.max_batch_delay)
        log.info("model loaded from %s in %.1f s; serving", self.settings.model_dir, time.monotonic() - started)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "")
        try:
            if path == "/ping":
                self._require_method(method, "GET")
                self._require_model()
                return self._respond(start_response, 200, b"", "text/plain")
            if path == "/execution-parameters":
                self._require_method(method, "GET")
                parameters = {"MaxConcurrentTransforms": self.settings.max_concurrent_transforms,
                              "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": self.settings.max_payload_mb}
                return self._respond(start_response, 200, json.dumps(parameters).encode(), JSON)
            if path == "/invocations":
                self._require_method(method, "POST")
                return self._invocations(environ, start_response)
            raise RequestError(404, f"no such path {path!r}; this server answers /ping, /invocations and "
                                    "/execution-parameters")
        except RequestError as error:
            return self._respond(start_response, error.status, json.dumps({"error": error.message}).encode(), JSON)
        except Exception as error:  # noqa: BLE001 - one bad request must not take the worker down
            log.exception("request %s %s failed", method, path)
            body = json.dumps({"error": f"internal error: {type(error).__name__}: {error}"}).encode()
            return self._respond(start_response, 500, body, JSON)

    def _invocations(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        deadline = time.monotonic() + self.settings.timeout
        content_type = media_type(environ.get("CONTENT_TYPE")) or JSON
        check_content_type(content_type)
        kind = output_type(environ.get("HTTP_ACCEPT"), content_type)
        body = self._read_body(environ)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise RequestError(400, f"the body is not UTF-8: byte 0x{body[error.start]:02x} at offset "
                                    f"{error.start} is {error.reason}") from None
        del body
        texts = RequestTexts(text.removeprefix("\ufeff"), content_type)
        limit = self.settings.max_texts_per_request
        if limit is not None and len(texts) > limit:
            raise RequestError(413, f"the request holds {len(texts):,} texts; the limit is {limit:,} per request "
                                    "(ALBERT_NER_MAX_TEXTS_PER_REQUEST): send them in several requests, or "
                                    "through batch transform")
        batcher = self._require_model()
        if not self.settings.batch_mode:
            predictions = self._wait(batcher.submit(list(texts), deadline))
            return self._respond(start_response, 200, render(predictions, texts.single, kind), kind)
        # Batch transform: the answer streams a chunk at a time, two chunks in the model at once, so a
        # 100 MB body of short lines never holds all its texts' tokens and entities at the same time.
        chunks = self._predicted_chunks(batcher, texts, deadline)
        first = next(chunks, [])  # a failure before the first byte is still an HTTP error
        start_response("200 OK", [("Content-Type", kind)])
        return self._streamed(render_chunks(itertools.chain([first], chunks), texts.single, kind))

    @staticmethod
    def _streamed(pieces: Iterator[bytes]) -> Iterator[bytes]:
        """``pieces``, and past the first, a failure cuts the answer short (an unfinished chunked body, which
        every HTTP client reports as an error) with the reason in the log."""
        try:
            yield from pieces
        except RequestError as error:
            log.error("a batch-transform answer was cut short: %s", error.message)
            raise

    def _predicted_chunks(self, batcher: DynamicBatcher, texts: RequestTexts, deadline: float
                          ) -> Iterator[list[Any]]:
        in_flight: deque[Submission] = deque()
        for chunk in texts.chunks(STREAMED_CHUNK_TEXTS):
            in_flight.append(batcher.submit(chunk, deadline))
            if len(in_flight) > 1:
                yield self._wait(in_flight.popleft())
        while in_flight:
            yield self._wait(in_flight.popleft())

    def _wait(self, submission: Submission) -> list[Any]:
        try:
            return submission.result()
        except DeadlineExceeded as error:
            raise RequestError(504, f"the request did not finish within {self.settings.timeout} s "
                                    f"(SAGEMAKER_MODEL_SERVER_TIMEOUT): {error}; send fewer or shorter texts "
                                    "per request") from None

    def _read_body(self, environ: dict) -> bytes:
        limit = self.settings.max_payload_bytes
        stream = environ["wsgi.input"]
        if limit is None:
            return stream.read()
        too_large = RequestError(413, body_too_large(self.settings))
        length = environ.get("CONTENT_LENGTH") or ""
        if length.strip():
            try:
                size = int(length)
            except ValueError:
                raise RequestError(400, f"invalid Content-Length {length!r}") from None
            if size > limit:
                _discard(stream, size, 4 * limit)
                raise too_large
            return stream.read(size)
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise too_large
        return body

    def _require_model(self) -> DynamicBatcher:
        if self.batcher is not None:
            return self.batcher
        if self.load_error is not None:
            raise RequestError(500, f"the model failed to load: {self.load_error}")
        raise RequestError(503, "the model is still loading")

    @staticmethod
    def _require_method(method: str, expected: str) -> None:
        if method != expected and not (expected == "GET" and method == "HEAD"):
            raise RequestError(405, f"method {method} not allowed here; use {expected}")

    @staticmethod
    def _respond(start_response: Callable, status: int, body: bytes, kind: str) -> list[bytes]:
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
                  406: "Not Acceptable", 413: "Payload Too Large", 415: "Unsupported Media Type",
                  500: "Internal Server Error", 503: "Service Unavailable", 504: "Gateway Timeout"}.get(status, "Error")
        headers = [("Content-Type", kind if kind != TEXT else "text/plain; charset=utf-8"),
                   ("Content-Length", str(len(body)))]
        if status == 413:
            headers.append(("Connection", "close"))  # the unread body must not be parsed as a request
        start_response(f"{status} {reason}", headers)
        return [body]


def body_too_large(settings: ServingSettings) -> str:
    """The 413 message, from the application or nginx in front of it."""
    return (f"the body is larger than the {settings.max_payload_mb} MB limit"
            + (" (SAGEMAKER_MAX_PAYLOAD_IN_MB)" if settings.batch_mode else ""))


def _discard(stream: Any, size: int, at_most: int) -> None:
    """Read and drop an oversized body, so that the client, still sending, gets the 413 and not a reset
    connection; beyond ``at_most`` bytes the connection is closed instead."""
    remaining = min(size, at_most)
    while remaining > 0:
        chunk = stream.read(min(remaining, MIB))
        if not chunk:
            break
        remaining -= len(chunk)


def load_predictor(settings: ServingSettings) -> Callable[[list[str]], list[list[dict]]]:
    """Load the model in ``settings.model_dir`` on its runtime (``ALBERT_NER_RUNTIME``, else the model
    directory's default); return a function from texts to entity records.

    TensorFlow is imported only for the TensorFlow runtime, so the ONNX serving image, which has none,
    serves with this same code.
    """
    from albert_ner.prediction import Predictor, entity_records
    from albert_ner.runtimes.choice import TENSORFLOW, choose_runtime, requested_runtime

    runtime = choose_runtime(settings.model_dir, requested_runtime())
    if runtime == TENSORFLOW:
        try:
            import tensorflow as tf
        except ImportError:  # the ONNX serving image
            raise ModelDirectoryError(
                "this model runs on TensorFlow (its directory has no onnx/, or no ONNX copy whose agreement held), "
                "and this image has none: add the ONNX copies with `albert-ner export --format onnx --model-dir "
                "DIR`, set ALBERT_NER_RUNTIME=onnx, or serve it with the TensorFlow image") from None

        tf.config.threading.set_intra_op_parallelism_threads(settings.intra_op_threads)
        tf.config.threading.set_inter_op_parallelism_threads(2)
    predictor = Predictor.load(settings.model_dir, runtime=runtime, threads=settings.intra_op_threads)
    log.info("serving on the %s runtime", runtime)

    def predict(texts: list[str]) -> list[list[dict]]:
        token_lists = [list(text) for text in texts]
        return [entity_records(tokens, prediction.entities, prediction.scores)
                for tokens, prediction in zip(token_lists, predictor.predict(token_lists), strict=True)]

    predict(["预热"])  # trace the model before /ping says it is ready
    return predict


def create_app(settings: ServingSettings | None = None) -> InferenceApp:
    settings = settings or ServingSettings.from_environ()
    return InferenceApp(settings, lambda: load_predictor(settings))
