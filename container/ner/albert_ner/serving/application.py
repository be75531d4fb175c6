"""The WSGI application of ``serve``: routes, limits and errors, with the model loaded in the background.

Each worker loads the model in a background thread, so ``/ping`` answers at once: 503 while loading, 200
once the model can answer, 500 if loading failed. The HTTP contract is in :mod:`albert_ner.serving`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import hmac
import importlib.util
import itertools
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from albert_ner.confidence import ScoredPrediction
from albert_ner.environment import ServingSettings
from albert_ner.errors import ModelDirectoryError
from albert_ner.label_studio.client import LabelStudioClient
from albert_ner.resources import MIB
from albert_ner.serving import label_studio_backend
from albert_ner.serving.batcher import BatcherClosed, DeadlineExceeded, DynamicBatcher, Submission
from albert_ner.serving.http_codec import (
    JSON,
    TEXT,
    RequestError,
    RequestTexts,
    check_content_type,
    load_json,
    media_type,
    output_type,
    render,
    render_chunks,
)
from albert_ner.serving.retraining import RETRAINING_NEEDS, Retrainer

log = logging.getLogger("albert_ner.serving")

#: Texts of a batch-transform body handed to the batcher at a time (it cuts them into model batches).
STREAMED_CHUNK_TEXTS = 1024
#: How often a worker looks for a model a retrain has put in place (a stat of one small file).
RETRAIN_POLL_SECONDS = 1.0
#: How long a worker that could not load a retrained model waits before it tries again.
RELOAD_RETRY_SECONDS = 30.0


@dataclass(frozen=True)
class ServedModel:
    """What a worker serves: texts to scored predictions (one per text), the model's version (Label Studio
    keeps it with each prediction) and where it was loaded from (what a retrain warm-starts from)."""

    predict: Callable[[list[str]], list[ScoredPrediction]]
    version: str
    directory: Path | None = None


class InferenceApp:
    """The WSGI application: routes, limits and errors; the model lives behind a :class:`DynamicBatcher`."""

    def __init__(self, settings: ServingSettings, load: Callable[[], ServedModel],
                 reload: Callable[[Path], ServedModel] | None = None):
        self.settings = settings
        self.retrainer = None if settings.state_dir is None else Retrainer(
            settings.state_dir, LabelStudioClient.from_environ(os.environ), settings.retrain_hyperparameters,
            origin=settings.model_dir, every=settings.retrain_every, mapping=settings.label_mapping,
            timeout=settings.retrain_timeout)
        # The model and the batcher in front of it, replaced together (one assignment) by replace_model.
        self._serving: tuple[ServedModel, DynamicBatcher] | None = None
        self.load_error: str | None = None
        self.reload_error: str | None = None  # a retrained model this worker could not load (it retries)
        self._reload_failed: tuple[Path, float] | None = None  # which, and when
        self.label_studio = label_studio_backend.LabelStudioBackend(settings.label_mapping)
        self._loader = threading.Thread(target=self._load, args=(load, reload), name="model-loader", daemon=True)
        self._loader.start()
        if self.retrainer is not None and reload is not None:
            threading.Thread(target=self._follow_retrains, args=(self.retrainer, reload), name="model-follower",
                             daemon=True).start()

    def _load(self, load: Callable[[], ServedModel], reload: Callable[[Path], ServedModel] | None) -> None:
        """Load the model: a retrain's, if one is in place (a worker restarted after a retrain serves what
        the others serve from its first answer), else the model directory's."""
        started = time.monotonic()
        try:
            retrained = None
            if self.retrainer is not None and reload is not None and (current := self.retrainer.current_model_dir()):
                retrained = self._load_retrained(reload, current)
            model = retrained or load()
        except BaseException as error:  # noqa: BLE001 - reported by /ping and /invocations
            # Clients get the problem in the model directory's terms; the paths and the traceback go to the log.
            self.load_error = (str(error) if isinstance(error, ModelDirectoryError)
                               else f"{type(error).__name__}; the details are in the server's log")
            log.exception("cannot load the model from %s", self.settings.model_dir)
            return
        self.replace_model(model)
        log.info("model %s loaded from %s in %.1f s; serving", model.version, model.directory,
                 time.monotonic() - started)

    def replace_model(self, model: ServedModel) -> None:
        """Serve ``model`` from now on. Requests already in the old model's line finish on it; new ones, and
        any that were about to join that line, go to the new model (:meth:`_submit`): none is dropped."""
        old = self._serving
        self._serving = (model, DynamicBatcher(model.predict, self.settings.max_batch_size,
                                               self.settings.max_batch_delay))
        if old is not None:
            old[1].close()

    def _load_retrained(self, reload: Callable[[Path], ServedModel], current: Path) -> ServedModel | None:
        """The retrained model in ``current``, loaded; None if it does not load (the follower tries it again,
        and /health says why)."""
        try:
            model = reload(current)
        except Exception as error:  # noqa: BLE001 - the model being served stays
            self.reload_error = (f"cannot load the retrained model in {current} ({type(error).__name__}; the details "
                                 f"are in the server's log); trying again every {RELOAD_RETRY_SECONDS:g} s")
            self._reload_failed = (current, time.monotonic())
            log.exception("cannot load the retrained model in %s", current)
            return None
        self.reload_error, self._reload_failed = None, None
        return model

    def _follow_retrains(self, retrainer: Retrainer, reload: Callable[[Path], ServedModel]) -> None:
        """Serve each model a retrain puts in place (any worker's), once this worker has loaded it."""
        while True:
            time.sleep(RETRAIN_POLL_SECONDS)
            current = retrainer.current_model_dir()
            model, failed = self.model, self._reload_failed
            if current is None or model is None or current == model.directory:
                continue
            if failed is not None and failed[0] == current and time.monotonic() - failed[1] < RELOAD_RETRY_SECONDS:
                continue
            retrained = self._load_retrained(reload, current)
            if retrained is None:
                continue
            self.replace_model(retrained)
            log.info("now serving the retrained model %s (was %s)", retrained.version, model.version)

    @property
    def model(self) -> ServedModel | None:
        return None if self._serving is None else self._serving[0]

    def _submit(self, texts: list[str], deadline: float) -> tuple[ServedModel, Submission]:
        """Queue ``texts`` on the current model, and say which model that is."""
        while True:
            model, batcher = self._require_model()
            try:
                return model, batcher.submit(texts, deadline)
            except BatcherClosed:  # replaced since it was read: the next pass finds the new one
                continue

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "")
        try:
            if path == "/ping":
                self._require_method(method, "GET")
                self._require_model()
                return self._respond(start_response, 200, b"", "text/plain")
            self._require_credentials(environ)
            if path in label_studio_backend.PATHS:
                return self._label_studio(method, path, environ, start_response)
            if path == "/execution-parameters":
                self._require_method(method, "GET")
                parameters = {"MaxConcurrentTransforms": self.settings.max_concurrent_transforms,
                              "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": self.settings.max_payload_mb}
                return self._respond(start_response, 200, json.dumps(parameters).encode(), JSON)
            if path == "/invocations":
                self._require_method(method, "POST")
                return self._invocations(environ, start_response)
            raise RequestError(404, f"no such path {path!r}; this server answers /ping, /invocations and "
                                    "/execution-parameters, and Label Studio's /health, /setup, /predict and /webhook")
        except RequestError as error:
            return self._respond(start_response, error.status, json.dumps({"error": error.message}).encode(), JSON,
                                 error.headers)
        except Exception as error:  # noqa: BLE001 - one bad request must not take the worker down
            log.exception("request %s %s failed", method, path)
            body = json.dumps({"error": f"internal error: {type(error).__name__}: {error}"}).encode()
            return self._respond(start_response, 500, body, JSON)

    def _label_studio(self, method: str, path: str, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """Label Studio's ML backend routes (:mod:`albert_ner.serving.label_studio_backend`)."""
        if path == label_studio_backend.HEALTH:
            self._require_method(method, "GET")
            answer: dict[str, Any] = {"status": "UP", "model_version": self._require_model()[0].version}
            if self.retrainer is not None and (training := self.retrainer.status()) is not None:
                answer["training"] = training
            if self.reload_error is not None:
                answer["retrained_model_error"] = self.reload_error
        else:
            self._require_method(method, "POST")
            deadline = time.monotonic() + self.settings.timeout
            check_content_type(media_type(environ.get("CONTENT_TYPE")) or JSON)
            body = load_json(self._read_text(environ))
            if path == label_studio_backend.SETUP:
                answer = self.label_studio.setup(body, self._require_model()[0].version)
            elif path == label_studio_backend.WEBHOOK:
                answer = self._webhook(body)
            else:
                interface, texts = self.label_studio.texts(body)
                self._check_count(len(texts))
                model, submission = self._submit(texts, deadline)  # the answer names the model that made it
                answer = self.label_studio.results(texts, self._wait(submission), interface, model.version)
        # ASCII JSON: a lone surrogate echoed from the request (a label, an action) cannot fail the answer.
        return self._respond(start_response, 200, json.dumps(answer).encode("ascii"), JSON)

    def _webhook(self, body: Any) -> dict[str, Any]:
        """A Label Studio event: the training trigger retrains; with ALBERT_NER_RETRAIN_EVERY, new annotations
        are counted and may retrain. Others are ignored."""
        action, project = label_studio_backend.event(body)
        counted = label_studio_backend.ANNOTATION_ACTIONS if self.settings.retrain_every else ()
        if action != label_studio_backend.START_TRAINING and action not in counted:
            return {"status": "ignored", "action": action}
        if project is None:
            raise RequestError(400, f"the {action} event names no project id")
        if self.settings.basic_auth is None:
            # Open, anyone who reaches the port could start retrains of any project the API key can read.
            raise RequestError(403, "retraining wants this server's requests authenticated: set BASIC_AUTH_USER and "
                                    "BASIC_AUTH_PASS, and the same in the project's model connection")
        if self.retrainer is None:
            raise RequestError(503, "retraining is off: this server has no state directory (ALBERT_NER_STATE_DIR)")
        if action == label_studio_backend.START_TRAINING and self.retrainer.client is None:
            raise RequestError(503, RETRAINING_NEEDS)
        if action == label_studio_backend.START_TRAINING and importlib.util.find_spec("tensorflow") is None:
            raise RequestError(503, "this image cannot train (it has no TensorFlow, as the ONNX serving image): "
                                    "retrain with the training image's serve")
        served = self._require_model()[0].directory
        if served is None:
            raise RequestError(503, "the served model has no directory to warm-start a retrain from")
        if action == label_studio_backend.START_TRAINING:
            started = self.retrainer.start(project, served)
            return {"status": "training started" if started else "a retrain is running already", "project": project}
        count, started = self.retrainer.annotation_event(project, served, label_studio_backend.annotations_in(body))
        return {"status": "training started" if started else "counted", "project": project,
                "annotations_since_training": 0 if started else count}

    def _invocations(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        deadline = time.monotonic() + self.settings.timeout
        content_type = media_type(environ.get("CONTENT_TYPE")) or JSON
        check_content_type(content_type)
        kind = output_type(environ.get("HTTP_ACCEPT"), content_type)
        texts = RequestTexts(self._read_text(environ), content_type)
        self._check_count(len(texts))
        self._require_model()
        if not self.settings.batch_mode:
            chunk = list(texts)
            predictions = entity_records_of(chunk, self._wait(self._submit(chunk, deadline)[1]))
            return self._respond(start_response, 200, render(predictions, texts.single, kind), kind)
        # Batch transform: the answer streams a chunk at a time, two chunks in the model at once, so a
        # 100 MB body of short lines never holds all its texts' tokens and entities at the same time.
        chunks = self._predicted_chunks(texts, deadline)
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

    def _predicted_chunks(self, texts: RequestTexts, deadline: float) -> Iterator[list[list[dict]]]:
        in_flight: deque[tuple[list[str], Submission]] = deque()
        for chunk in texts.chunks(STREAMED_CHUNK_TEXTS):
            in_flight.append((chunk, self._submit(chunk, deadline)[1]))
            if len(in_flight) > 1:
                done, submission = in_flight.popleft()
                yield entity_records_of(done, self._wait(submission))
        while in_flight:
            done, submission = in_flight.popleft()
            yield entity_records_of(done, self._wait(submission))

    def _wait(self, submission: Submission) -> list[Any]:
        try:
            return submission.result()
        except DeadlineExceeded as error:
            raise RequestError(504, f"the request did not finish within {self.settings.timeout} s "
                                    f"(SAGEMAKER_MODEL_SERVER_TIMEOUT): {error}; send fewer or shorter texts "
                                    "per request") from None

    def _read_text(self, environ: dict) -> str:
        """The body as text (UTF-8, a leading BOM dropped), within the payload limit."""
        body = self._read_body(environ)
        try:
            return body.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError as error:
            raise RequestError(400, f"the body is not UTF-8: byte 0x{body[error.start]:02x} at offset "
                                    f"{error.start} is {error.reason}") from None

    def _check_count(self, count: int) -> None:
        limit = self.settings.max_texts_per_request
        if limit is not None and count > limit:
            raise RequestError(413, f"the request holds {count:,} texts; the limit is {limit:,} per request "
                                    "(ALBERT_NER_MAX_TEXTS_PER_REQUEST): send them in several requests, or "
                                    "through batch transform")

    def _require_credentials(self, environ: dict) -> None:
        """With BASIC_AUTH_USER and BASIC_AUTH_PASS set, the request must carry them (HTTP basic auth)."""
        if self.settings.basic_auth is None:
            return
        scheme, _, credentials = (environ.get("HTTP_AUTHORIZATION") or "").partition(" ")
        try:
            given = base64.b64decode(credentials.strip(), validate=True) if scheme.lower() == "basic" else b""
        except binascii.Error:
            given = b""
        # RFC 7617 leaves the charset to the client: requests (Label Studio's) sends latin-1, curl and browsers UTF-8.
        expected = ":".join(self.settings.basic_auth)
        accepted = [expected.encode("utf-8")]
        with contextlib.suppress(UnicodeEncodeError):
            accepted.append(expected.encode("latin-1"))
        if not any([hmac.compare_digest(given, candidate) for candidate in accepted]):  # a list: both compared
            raise RequestError(401, "this server wants HTTP basic authentication with BASIC_AUTH_USER and "
                                    "BASIC_AUTH_PASS", [("WWW-Authenticate", 'Basic realm="albert-ner"')])

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

    def _require_model(self) -> tuple[ServedModel, DynamicBatcher]:
        if self._serving is not None:
            return self._serving
        if self.load_error is not None:
            raise RequestError(500, f"the model failed to load: {self.load_error}")
        raise RequestError(503, "the model is still loading")

    @staticmethod
    def _require_method(method: str, expected: str) -> None:
        if method != expected and not (expected == "GET" and method == "HEAD"):
            raise RequestError(405, f"method {method} not allowed here; use {expected}")

    @staticmethod
    def _respond(start_response: Callable, status: int, body: bytes, kind: str,
                 extra_headers: Sequence[tuple[str, str]] = ()) -> list[bytes]:
        reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
                  406: "Not Acceptable", 413: "Payload Too Large", 415: "Unsupported Media Type",
                  500: "Internal Server Error", 503: "Service Unavailable", 504: "Gateway Timeout"}.get(status, "Error")
        headers = [("Content-Type", kind if kind != TEXT else "text/plain; charset=utf-8"),
                   ("Content-Length", str(len(body)))]
        headers += extra_headers
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


def entity_records_of(texts: Sequence[str], predictions: Sequence[ScoredPrediction]) -> list[list[dict]]:
    """Each text's entities as the records the endpoint answers with."""
    from albert_ner.prediction import entity_records

    return [entity_records(text, prediction.entities, prediction.scores)
            for text, prediction in zip(texts, predictions, strict=True)]


def load_model(settings: ServingSettings) -> ServedModel:
    """Load the model in ``settings.model_dir`` on its runtime (``ALBERT_NER_RUNTIME``, else the model
    directory's default).

    TensorFlow is imported only for the TensorFlow runtime, so the ONNX serving image, which has none,
    serves with this same code.
    """
    from albert_ner.model_directory import model_version
    from albert_ner.prediction import Predictor
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

        try:
            tf.config.threading.set_intra_op_parallelism_threads(settings.intra_op_threads)
            tf.config.threading.set_inter_op_parallelism_threads(2)
        except RuntimeError:  # TensorFlow already runs (a retrained model's load): its pools stay as they are
            log.info("TensorFlow's thread pools were set before; they stay as they are")
    predictor = Predictor.load(settings.model_dir, runtime=runtime, threads=settings.intra_op_threads)
    log.info("serving on the %s runtime", runtime)

    def predict(texts: list[str]) -> list[ScoredPrediction]:
        return predictor.predict([list(text) for text in texts])

    predict(["预热"])  # trace the model before /ping says it is ready
    return ServedModel(predict, model_version(settings.model_dir), settings.model_dir)


def create_app(settings: ServingSettings | None = None) -> InferenceApp:
    settings = settings or ServingSettings.from_environ()
    return InferenceApp(settings, lambda: load_model(settings),
                        lambda directory: load_model(dataclasses.replace(settings, model_dir=directory)))
