"""The SageMaker inference server behind ``docker run IMAGE serve``: raw text in, entities out, over HTTP.

SageMaker's contract: listen on 8080 (``SAGEMAKER_BIND_TO_PORT`` moves it), ``GET /ping`` within 2 s,
``POST /invocations``, optionally ``GET /execution-parameters`` for batch transform. The server is
gunicorn with threaded (``gthread``) workers. Each worker loads the model in a background thread, so
``/ping`` answers at once: 503 while loading, 200 once the model can answer, 500 if loading failed.

Requests are served through :class:`~albert_ner.prediction.Predictor`, the object that evaluates during
training and backs ``albert-ner predict``, so the endpoint, the CLI and the test report cannot disagree.
(The exported SavedModel computes the same thing, for the AWS TensorFlow Serving container.) Concurrent
requests meet in a :class:`DynamicBatcher`: the first text waits at most a few milliseconds for others,
and they go through the model as one batch, so throughput grows with the number of clients.

``/invocations`` input (``Content-Type``):

- ``application/json``: ``{"text": "..."}`` -> ``{"entities": [...]}``; ``{"instances": [...]}`` or a
  JSON list of texts (strings or ``{"text": ...}``) -> ``{"predictions": [{"entities": [...]}, ...]}``.
- ``application/jsonlines``: one string or ``{"text": ...}`` per line; a blank line is an empty text.
- ``text/plain``: one text per line.

Output (``Accept``): ``application/json`` or ``application/jsonlines`` (one ``{"entities": [...]}`` line
per input text, in order). Without an ``Accept`` (or with ``*/*``) JSON input gets JSON and line input
gets JSON Lines. An entity is ``{"type", "start", "end", "text", "score"}``: character offsets, end
exclusive, and the model's probability (0 to 1) that exactly these characters form exactly this entity
(:mod:`albert_ner.confidence`).

Environment (read by :class:`~albert_ner.environment.ServingSettings`): ``SAGEMAKER_BIND_TO_PORT`` (8080),
``SM_MODEL_DIR`` or ``SAGEMAKER_BASE_DIR``/model
(/opt/ml/model), ``SAGEMAKER_MODEL_SERVER_WORKERS`` and ``SAGEMAKER_MODEL_SERVER_TIMEOUT`` (as in AWS's
inference toolkit), ``SAGEMAKER_BATCH`` + ``SAGEMAKER_MAX_PAYLOAD_IN_MB`` (body limit in batch transform;
6 MB otherwise), ``SAGEMAKER_MAX_BATCH_SIZE`` (texts per model batch, 64) and
``SAGEMAKER_MAX_BATCH_DELAY_MS`` (5), ``ALBERT_NER_BIND_HOST`` (0.0.0.0).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from typing import Any

from albert_ner.environment import ServingSettings
from albert_ner.resources import MIB

log = logging.getLogger("albert_ner.serving")

JSON = "application/json"
JSON_LINES = "application/jsonlines"
TEXT = "text/plain"
_JSON_LINES_ALIASES = {JSON_LINES, "application/x-jsonlines", "application/jsonl", "application/x-ndjson"}
SUPPORTED_CONTENT_TYPES = (JSON, JSON_LINES, TEXT)
SUPPORTED_ACCEPT = (JSON, JSON_LINES)


# ------------------------------------------------------------------------------------------ batching
class DynamicBatcher:
    """Merges the texts of concurrent requests into model batches.

    A batch starts with the oldest waiting request and takes more until it holds ``max_batch_size``
    texts or ``max_delay`` has passed since it started; a request is never split, so one larger than
    ``max_batch_size`` is a batch of its own (the predictor cuts it into model batches). ``predict`` runs
    on one thread, the only one that touches the model.
    """

    def __init__(self, predict: Callable[[list[str]], list[Any]], max_batch_size: int = 64,
                 max_delay: float = 0.005):
        self._predict = predict
        self.max_batch_size = max(1, max_batch_size)
        self.max_delay = max_delay
        self._pending: list[tuple[list[str], Future]] = []
        self._condition = threading.Condition()
        self.batches = 0
        self._thread = threading.Thread(target=self._run, name="dynamic-batcher", daemon=True)
        self._thread.start()

    def submit(self, texts: Sequence[str]) -> Future:
        future: Future = Future()
        if not texts:
            future.set_result([])
            return future
        with self._condition:
            self._pending.append((list(texts), future))
            self._condition.notify()
        return future

    def predict(self, texts: Sequence[str], timeout: float | None = None) -> list[Any]:
        return self.submit(texts).result(timeout)

    def _take_batch(self) -> list[tuple[list[str], Future]]:
        with self._condition:
            while not self._pending:
                self._condition.wait()
            deadline = time.monotonic() + self.max_delay
            while True:
                count, taken = 0, 0
                for texts, _ in self._pending:
                    if taken and count + len(texts) > self.max_batch_size:
                        break
                    count += len(texts)
                    taken += 1
                remaining = deadline - time.monotonic()
                if count >= self.max_batch_size or taken < len(self._pending) or remaining <= 0:
                    batch, self._pending = self._pending[:taken], self._pending[taken:]
                    return batch
                self._condition.wait(remaining)

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            texts = [text for request_texts, _ in batch for text in request_texts]
            try:
                results = self._predict(texts)
            except Exception as error:  # noqa: BLE001 - the requests get the error, the thread goes on
                log.exception("prediction failed for a batch of %d texts", len(texts))
                for _, future in batch:
                    future.set_exception(error)
                continue
            self.batches += 1
            position = 0
            for request_texts, future in batch:
                future.set_result(results[position:position + len(request_texts)])
                position += len(request_texts)


# ------------------------------------------------------------------------------------ request parsing
class RequestError(Exception):
    """A client error: HTTP status and a message for the response body."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def parse_texts(body: str, content_type: str) -> tuple[list[str], bool]:
    """The texts of a request body, and whether it asked for a single text (``{"text": ...}``)."""
    if content_type == JSON:
        return _texts_of_json(body)
    if content_type in _JSON_LINES_ALIASES:
        return [_text_of_json_line(line, number) for number, line in enumerate(_lines(body), start=1)], False
    if content_type == TEXT:
        return list(_lines(body)), False
    raise RequestError(415, f"unsupported Content-Type {content_type or '(none)'!r}; supported: "
                            + ", ".join(SUPPORTED_CONTENT_TYPES))


def _lines(body: str) -> list[str]:
    lines = body.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _load_json(text: str, where: str = "") -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        position = f"line {error.lineno} column {error.colno}" if not where else f"{where} column {error.colno}"
        raise RequestError(400, f"malformed JSON at {position} (character {error.pos}): {error.msg}") from None


def _texts_of_json(body: str) -> tuple[list[str], bool]:
    value = _load_json(body)
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
    if isinstance(value, dict):
        if "text" not in value:
            raise RequestError(400, f'{what}: an object needs a "text" key, found keys {sorted(value)}')
        value = value["text"]
    if not isinstance(value, str):
        raise RequestError(400, f'{what}: expected a string or {{"text": string}}, found {type(value).__name__}')
    return value


def _text_of_json_line(line: str, number: int) -> str:
    if not line.strip():
        return ""
    return _text_of(_load_json(line, f"line {number}"), f"line {number}")


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
    if kind != JSON:
        return "".join(json.dumps({"entities": entities}, ensure_ascii=False) + "\n"
                       for entities in predictions).encode("utf-8")
    if single:
        document: Any = {"entities": predictions[0]}
    else:
        document = {"predictions": [{"entities": entities} for entities in predictions]}
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


# --------------------------------------------------------------------------------------- application
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
            self.load_error = f"{type(error).__name__}: {error}"
            log.exception("cannot load the model from %s", self.settings.model_dir)
            return
        self.batcher = DynamicBatcher(predict, self.settings.max_batch_size, self.settings.max_batch_delay)
        log.info("model loaded from %s in %.1f s; serving", self.settings.model_dir, time.monotonic() - started)

    def __call__(self, environ: dict, start_response: Callable) -> list[bytes]:
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

    def _invocations(self, environ: dict, start_response: Callable) -> list[bytes]:
        content_type = media_type(environ.get("CONTENT_TYPE")) or JSON
        if content_type not in SUPPORTED_CONTENT_TYPES and content_type not in _JSON_LINES_ALIASES:
            raise RequestError(415, f"unsupported Content-Type {content_type!r}; supported: "
                                    + ", ".join(SUPPORTED_CONTENT_TYPES))
        kind = output_type(environ.get("HTTP_ACCEPT"), content_type)
        body = self._read_body(environ)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise RequestError(400, f"the body is not UTF-8: byte 0x{body[error.start]:02x} at offset "
                                    f"{error.start} is {error.reason}") from None
        texts, single = parse_texts(text.removeprefix("\ufeff"), content_type)
        batcher = self._require_model()
        predictions = batcher.predict(texts)
        return self._respond(start_response, 200, render(predictions, single, kind), kind)

    def _read_body(self, environ: dict) -> bytes:
        limit = self.settings.max_payload_bytes
        too_large = RequestError(413, f"the body is larger than the {self.settings.max_payload_mb} MB limit"
                                      + (" (SAGEMAKER_MAX_PAYLOAD_IN_MB)" if self.settings.batch_mode else ""))
        length = environ.get("CONTENT_LENGTH") or ""
        stream = environ["wsgi.input"]
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
            raise RequestError(500, f"the model failed to load from {self.settings.model_dir}: {self.load_error}")
        raise RequestError(503, "the model is still loading")

    @staticmethod
    def _require_method(method: str, expected: str) -> None:
        if method != expected and not (expected == "GET" and method == "HEAD"):
            raise RequestError(405, f"method {method} not allowed here; use {expected}")

    @staticmethod
    def _respond(start_response: Callable, status: int, body: bytes, kind: str) -> list[bytes]:
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
                  406: "Not Acceptable", 413: "Payload Too Large", 415: "Unsupported Media Type",
                  500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "Error")
        headers = [("Content-Type", kind if kind != TEXT else "text/plain; charset=utf-8"),
                   ("Content-Length", str(len(body)))]
        if status == 413:
            headers.append(("Connection", "close"))  # the unread body must not be parsed as a request
        start_response(f"{status} {reason}", headers)
        return [body]


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
    """Load the model in ``settings.model_dir``; return a function from texts to entity records."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(settings.intra_op_threads)
    tf.config.threading.set_inter_op_parallelism_threads(2)
    from albert_ner.prediction import Predictor, entity_records

    predictor = Predictor.load(settings.model_dir)

    def predict(texts: list[str]) -> list[list[dict]]:
        token_lists = [list(text) for text in texts]
        return [entity_records(tokens, prediction.entities, prediction.scores)
                for tokens, prediction in zip(token_lists, predictor.predict(token_lists), strict=True)]

    predict(["预热"])  # trace the model before /ping says it is ready
    return predict


def create_app(settings: ServingSettings | None = None) -> InferenceApp:
    settings = settings or ServingSettings.from_environ()
    return InferenceApp(settings, lambda: load_predictor(settings))


# ---------------------------------------------------------------------------------------------- main
def run_server(settings: ServingSettings | None = None) -> int:
    """Run gunicorn in this process (it becomes the master: SIGTERM drains the workers, then exit 0)."""
    from gunicorn.app.base import BaseApplication

    resolved = settings or ServingSettings.from_environ()

    class GunicornServer(BaseApplication):
        def load_config(self) -> None:
            options = {
                "bind": [f"{resolved.host}:{resolved.port}"],
                "worker_class": "gthread",
                "workers": resolved.workers,
                "threads": resolved.threads,
                "timeout": resolved.timeout,
                "graceful_timeout": resolved.timeout,
                "keepalive": 5,
                "errorlog": "-",
                "loglevel": "info",
                "proc_name": "albert-ner-serve",
            }
            if "control_socket_disable" in self.cfg.settings:  # gunicorn >= 25.1: no shared socket in $HOME
                options["control_socket_disable"] = True
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> InferenceApp:
            return create_app(resolved)  # in the worker, after the fork: TensorFlow never runs in the master

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stdout)
    log.info("serving %s on %s:%d: %d worker(s) x %d threads, %d TensorFlow threads each, body limit %d MB%s",
             resolved.model_dir, resolved.host, resolved.port, resolved.workers, resolved.threads,
             resolved.intra_op_threads, resolved.max_payload_mb, " (batch transform)" if resolved.batch_mode else "")
    GunicornServer().run()
    return 0
