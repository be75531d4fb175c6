"""The `serve` program run as SageMaker runs it: a subprocess on a model trained by `train`, over real HTTP.

One model is trained and one server started per module; the SIGTERM test runs last and stops it. The
request parsing, limits and batching are also checked in-process against a fake model (no TensorFlow),
which is where batch-transform limits are varied.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import REPO, SAMPLE

SERVE = REPO / "container" / "ner" / "serve"
HOST = "127.0.0.1"
SENTENCE = "张三在北京大学工作。"


def sample_texts() -> list[str]:
    blocks = (SAMPLE / "test.txt").read_text(encoding="utf-8").split("\n\n")
    return ["".join(line.split()[0] for line in block.splitlines() if line.strip())
            for block in blocks if block.strip()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class Server:
    """`serve` on the ``/opt/ml``-style tree ``base``, as SageMaker starts it (the model, port and address in
    the environment), or with ``command_line`` as `albert-ner serve --model-dir --port --host`."""

    def __init__(self, base: Path, extra_env: dict[str, str] | None = None, command_line: bool = False):
        self.port = free_port()
        environ = dict(os.environ, SAGEMAKER_MODEL_SERVER_WORKERS="1", PYTHONUNBUFFERED="1", **(extra_env or {}))
        if command_line:
            command = [sys.executable, "-m", "albert_ner", "serve", "--model-dir", str(base / "model"),
                       "--port", str(self.port), "--host", HOST]
        else:
            command = [sys.executable, str(SERVE)]
            environ.update(SAGEMAKER_BASE_DIR=str(base), SAGEMAKER_BIND_TO_PORT=str(self.port),
                           ALBERT_NER_BIND_HOST=HOST)
        self.log = open(base / "serve.log", "w+", encoding="utf-8")
        self.process = subprocess.Popen(command, env=environ, stdout=self.log, stderr=subprocess.STDOUT)
        self.ping_codes: list[int] = []

    def request(self, method: str, path: str, body: bytes | str | None = None, headers: dict | None = None,
                timeout: float = 60) -> tuple[int, dict, bytes]:
        connection = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        try:
            data = body.encode("utf-8") if isinstance(body, str) else body
            connection.request(method, path, body=data, headers=headers or {})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def invoke(self, body: bytes | str, content_type: str | None = "application/json",
               accept: str | None = None) -> tuple[int, dict, bytes]:
        headers = {}
        if content_type:
            headers["Content-Type"] = content_type
        if accept:
            headers["Accept"] = accept
        return self.request("POST", "/invocations", body, headers)

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                status, _, _ = self.request("GET", "/ping", timeout=5)
            except OSError:
                time.sleep(0.05)
                continue
            self.ping_codes.append(status)
            if status == 200:
                return
            time.sleep(0.05)
        raise AssertionError("the server never became ready:\n" + self.output())

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-5000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def server(trained_job):
    """On float32 ONNX: these tests compare answers across batches, and the default int8 copy's dynamic
    quantization makes a score depend on the texts it shares a batch with (test_onnx_runtime.py)."""
    opt_ml, _ = trained_job
    running = Server(opt_ml.base, {"ALBERT_NER_RUNTIME": "onnx"})
    running.wait_ready()
    yield running
    running.stop()


def entities(body: bytes) -> list[dict]:
    return json.loads(body)["entities"]


def json_lines(body: bytes) -> list[dict]:
    text = body.decode("utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


# ----------------------------------------------------------------------------------- over HTTP
def test_ping_is_503_until_the_model_is_loaded(server) -> None:
    assert server.ping_codes[0] == 503 and server.ping_codes[-1] == 200
    status, _, _ = server.request("GET", "/ping")
    assert status == 200


def test_execution_parameters(server) -> None:
    status, headers, body = server.request("GET", "/execution-parameters")
    assert status == 200 and headers["content-type"] == "application/json"
    parameters = json.loads(body)
    assert parameters["BatchStrategy"] == "MULTI_RECORD" and parameters["MaxPayloadInMB"] == 6
    assert isinstance(parameters["MaxConcurrentTransforms"], int) and parameters["MaxConcurrentTransforms"] >= 1


def test_json_text_gives_entities_with_offsets(server) -> None:
    status, headers, body = server.invoke(json.dumps({"text": SENTENCE}))
    assert status == 200 and headers["content-type"] == "application/json"
    found = entities(body)
    assert {"type": "PER", "start": 0, "end": 2, "text": "张三"} in [without_score(e) for e in found]
    for entity in found:
        assert set(entity) == {"type", "start", "end", "text", "score"}
        assert SENTENCE[entity["start"]:entity["end"]] == entity["text"]
        assert isinstance(entity["score"], float) and 0.0 <= entity["score"] <= 1.0


def without_score(entity: dict) -> dict:
    return {key: value for key, value in entity.items() if key != "score"}


def same_prediction(answer: dict, expected: dict) -> bool:
    """The same entities; scores equal to float32 rounding, which depends on the batch a text shared."""
    found, wanted = answer["entities"], expected["entities"]
    return ([without_score(e) for e in found] == [without_score(e) for e in wanted]
            and all(abs(a["score"] - b["score"]) < 1e-5 for a, b in zip(found, wanted, strict=True)))


def test_batch_transform_json_lines_carry_scores(trained_job) -> None:
    """SAGEMAKER_BATCH=true, SplitType=Line: one output line per input line, every entity scored."""
    opt_ml, _ = trained_job
    batch_server = Server(opt_ml.base, {"SAGEMAKER_BATCH": "true", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "20"})
    try:
        batch_server.wait_ready()
        texts = sample_texts()
        body = "".join(json.dumps({"text": text}, ensure_ascii=False) + "\n" for text in texts)
        status, headers, response = batch_server.invoke(body, "application/jsonlines", accept="application/jsonlines")
        assert status == 200 and headers["content-type"] == "application/jsonlines"
        results = json_lines(response)
        assert len(results) == len(texts)
        scores = [entity["score"] for result in results for entity in result["entities"]]
        assert len(scores) > len(texts) / 2 and all(0.0 <= score <= 1.0 for score in scores)
        assert len(set(scores)) > 10, "scores vary with the entity"
    finally:
        batch_server.stop()


def test_json_instances_and_lists_keep_order(server) -> None:
    texts = [SENTENCE, "", "李四去了上海。", {"text": SENTENCE}]
    for document in ({"instances": texts}, texts):
        status, _, body = server.invoke(json.dumps(document, ensure_ascii=False), "application/json; charset=utf-8")
        assert status == 200
        predictions = json.loads(body)["predictions"]
        assert len(predictions) == 4 and predictions[1] == {"entities": []}
        # The same text twice in one batch: int8 kernels may round its two rows' scores differently.
        assert same_prediction(predictions[0], predictions[3]) and predictions[0]["entities"][0]["text"] == "张三"
        assert predictions[2]["entities"][0]["text"] == "李四"


def test_empty_text_gives_an_empty_entity_list(server) -> None:
    status, _, body = server.invoke(json.dumps({"text": ""}))
    assert status == 200 and json.loads(body) == {"entities": []}
    status, _, body = server.invoke(json.dumps({"instances": []}))
    assert status == 200 and json.loads(body) == {"predictions": []}


def test_json_lines_in_one_result_line_per_input_line(server) -> None:
    lines = [json.dumps(SENTENCE, ensure_ascii=False), json.dumps({"text": "李四去了上海。"}, ensure_ascii=False), "",
             json.dumps({"text": ""})]
    status, headers, body = server.invoke("\n".join(lines) + "\n", "application/jsonlines")
    assert status == 200 and headers["content-type"] == "application/jsonlines"
    results = json_lines(body)
    assert len(results) == 4 and results[2] == results[3] == {"entities": []}
    assert results[0]["entities"][0]["text"] == "张三" and results[1]["entities"][0]["text"] == "李四"


def test_text_plain_one_sentence_per_line_and_accept_chooses_the_output(server) -> None:
    body = f"{SENTENCE}\r\n李四去了上海。\n"
    status, headers, default = server.invoke(body, "text/plain")
    assert status == 200 and headers["content-type"] == "application/jsonlines"
    assert [r["entities"][0]["text"] for r in json_lines(default)] == ["张三", "李四"]
    status, headers, as_json = server.invoke(body, "text/plain", accept="application/json")
    assert status == 200 and headers["content-type"] == "application/json"
    assert json.loads(as_json)["predictions"] == json_lines(default)
    status, headers, as_lines = server.invoke(json.dumps({"text": SENTENCE}), accept="application/jsonlines")
    assert status == 200 and headers["content-type"] == "application/jsonlines"
    assert json_lines(as_lines) == [json.loads(server.invoke(json.dumps({"text": SENTENCE}))[2])]
    status, headers, _ = server.invoke(json.dumps({"text": SENTENCE}), accept="*/*")
    assert status == 200 and headers["content-type"] == "application/json"
    status, _, error = server.invoke(json.dumps({"text": SENTENCE}), accept="text/csv")
    assert status == 406 and "application/jsonlines" in json.loads(error)["error"]


def test_long_and_odd_texts_are_tagged_whole(server) -> None:
    long_text = (SENTENCE * 40) + "张三" * 100  # many windows of max_seq_length 32
    odd = "ＡＢＣ公司 的\t张三😀\u200b在北京"
    status, _, body = server.invoke(json.dumps({"instances": [long_text, odd]}, ensure_ascii=False))
    assert status == 200
    first, second = json.loads(body)["predictions"]
    assert sum(entity["text"] == "张三" for entity in first["entities"]) >= 40
    assert all(long_text[e["start"]:e["end"]] == e["text"] for e in first["entities"])
    assert all(odd[e["start"]:e["end"]] == e["text"] for e in second["entities"])


@pytest.mark.parametrize("body, content_type, status, words", [
    ('{"text": "张三",}', "application/json", 400, ["line 1 column 15"]),
    ('{\n  "text": \n}', "application/json", 400, ["line 3 column 1"]),
    ('"张三"\n{"text": oops}\n', "application/jsonlines", 400, ["line 2 column 10"]),
    ('{"txt": "张三"}', "application/json", 400, ['"instances"']),
    ('{"text": 5}', "application/json", 400, ["int"]),
    ('[1, "a"]', "application/json", 400, ["instance 0"]),
    ("a,b", "text/csv", 415, ["application/json", "application/jsonlines", "text/plain"]),
    ("张三", "application/x-www-form-urlencoded", 415, ["text/plain"]),
    (b"\xe5\xbc\xa0\xff\n", "text/plain", 400, ["UTF-8", "offset 3"]),
    (b'{"text": "\xc0\xaf"}', "application/json", 400, ["UTF-8"]),
])
def test_bad_input_is_a_client_error_naming_the_problem(server, body, content_type, status, words) -> None:
    answer, headers, response = server.invoke(body, content_type)
    assert answer == status, response
    message = json.loads(response)["error"]
    for word in words:
        assert word in message
    assert server.request("GET", "/ping")[0] == 200


def test_a_body_over_6_mb_is_413(server) -> None:
    body = json.dumps({"text": "张" * (2 * 1024 * 1024 + 1)}, ensure_ascii=False).encode()
    assert len(body) > 6 * 1024 * 1024
    status, _, response = server.invoke(body)
    assert status == 413 and "6 MB" in json.loads(response)["error"]
    assert server.request("GET", "/ping")[0] == 200


def test_unknown_paths_and_methods(server) -> None:
    assert server.request("GET", "/nothing")[0] == 404
    assert server.request("GET", "/invocations")[0] == 405
    assert server.request("POST", "/ping", b"")[0] == 405


def test_concurrent_load_has_no_errors_and_ping_stays_fast(server) -> None:
    texts = sample_texts()
    status, _, body = server.invoke(json.dumps({"instances": texts}, ensure_ascii=False))
    expected = json.loads(body)["predictions"]
    errors: list[str] = []
    ping_seconds: list[float] = []
    done = threading.Event()

    def client(number: int) -> None:
        connection = http.client.HTTPConnection(HOST, server.port, timeout=60)
        for request in range(200):
            index = (number * 200 + request) % len(texts)
            connection.request("POST", "/invocations", json.dumps({"text": texts[index]}, ensure_ascii=False).encode(),
                               {"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = response.read()
            if response.status != 200:
                errors.append(f"{response.status} {answer[:200]!r}")
            elif not same_prediction(json.loads(answer), expected[index]):
                errors.append(f"text {index}: {answer[:200]!r} != {expected[index]}")
        connection.close()

    def pinger() -> None:
        while not done.is_set():
            started = time.monotonic()
            status, _, _ = server.request("GET", "/ping", timeout=10)
            ping_seconds.append(time.monotonic() - started)
            if status != 200:
                errors.append(f"ping {status}")
            time.sleep(0.1)

    watcher = threading.Thread(target=pinger)
    watcher.start()
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(client, range(8)))
    elapsed = time.monotonic() - started
    done.set()
    watcher.join()
    assert not errors, errors[:5]
    assert max(ping_seconds) < 2.0
    print(f"1600 requests from 8 clients in {elapsed:.1f} s ({1600 / elapsed:.0f} requests/s); "
          f"slowest /ping {max(ping_seconds) * 1000:.0f} ms")


def test_sigterm_finishes_the_request_in_flight_then_exits_0(server) -> None:
    """Runs last: it stops the module's server."""
    lines = [SENTENCE * 30] * 1000  # the most texts a request may hold
    result: dict = {}

    def big_request() -> None:
        result["answer"] = server.invoke("\n".join(lines), "text/plain")

    sender = threading.Thread(target=big_request)
    sender.start()
    time.sleep(0.5)
    assert "answer" not in result, "the request finished before SIGTERM: make it bigger"
    server.process.send_signal(signal.SIGTERM)
    sender.join(120)
    status, _, body = result["answer"]
    assert status == 200 and len(json_lines(body)) == 1000
    assert server.process.wait(60) == 0, server.output()


# ----------------------------------------------------------------------------- in-process, no model
from albert_ner.confidence import ScoredPrediction  # noqa: E402
from albert_ner.environment import ServingSettings  # noqa: E402
from albert_ner.sentences import Entity  # noqa: E402
from albert_ner.serving.application import InferenceApp, ServedModel  # noqa: E402
from albert_ner.serving.batcher import DynamicBatcher  # noqa: E402


def fake_predict(texts: list[str]) -> list[list[dict]]:
    """For the batcher, which hands on whatever the model returns: one whole-text entity record per text."""
    return [[{"type": "LEN", "start": 0, "end": len(text), "text": text}] if text else [] for text in texts]


def fake_scored(texts: list[str]) -> list[ScoredPrediction]:
    """For the application, a model's answer: the whole text as one LEN entity, of probability 0.5."""
    return [ScoredPrediction([], [Entity(0, len(text), "LEN")] if text else [], [0.5] if text else [], 0.5)
            for text in texts]


def call(app: InferenceApp, method: str, path: str, body: bytes = b"", content_type: str = "application/json",
         content_length: bool = True, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """The app's answer to one request, made as a WSGI server makes it (``headers`` as HTTP_* variables)."""
    captured = {}

    def start_response(status: str, headers: list) -> None:
        captured["status"] = int(status.split()[0])

    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "CONTENT_TYPE": content_type,
               "wsgi.input": io.BytesIO(body)}
    environ.update({"HTTP_" + name.upper().replace("-", "_"): value for name, value in (headers or {}).items()})
    if content_length:
        environ["CONTENT_LENGTH"] = str(len(body))
    response = b"".join(app(environ, start_response))
    return captured["status"], response


def ready_app(environ: dict[str, str], predict: Callable[[list[str]], list] = fake_scored) -> InferenceApp:
    app = InferenceApp(ServingSettings.from_environ({"SAGEMAKER_MODEL_SERVER_WORKERS": "1", **environ}),
                       lambda: ServedModel(predict, "albert-ner-test"))
    app._loader.join()
    return app


def test_batch_transform_payload_limit_comes_from_the_environment() -> None:
    app = ready_app({"SAGEMAKER_BATCH": "true", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "1"})
    assert json.loads(call(app, "GET", "/execution-parameters")[1])["MaxPayloadInMB"] == 1
    small = ("a" * 1000 + "\n") * 1000
    status, body = call(app, "POST", "/invocations", small.encode(), "text/plain")
    assert status == 200 and len(body.decode().splitlines()) == 1000
    status, body = call(app, "POST", "/invocations", (small * 2).encode(), "text/plain")
    assert status == 413 and "SAGEMAKER_MAX_PAYLOAD_IN_MB" in json.loads(body)["error"]
    status, _ = call(app, "POST", "/invocations", (small * 2).encode(), "text/plain", content_length=False)
    assert status == 413
    # Outside batch transform the variable does not apply: real-time endpoints take 6 MB.
    assert ready_app({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "100"}).settings.max_payload_mb == 6
    assert ready_app({"SAGEMAKER_BATCH": "true", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "100"}).settings.max_payload_mb == 100


def test_model_dir_and_port_come_from_the_environment() -> None:
    settings = ServingSettings.from_environ({"SAGEMAKER_BASE_DIR": "/x", "SAGEMAKER_BIND_TO_PORT": "9000",
                                             "SAGEMAKER_MODEL_SERVER_WORKERS": "3"})
    assert (str(settings.model_dir), settings.port, settings.workers) == ("/x/model", 9000, 3)
    settings = ServingSettings.from_environ({"SM_MODEL_DIR": "/m", "SAGEMAKER_MODEL_SERVER_WORKERS": "1"})
    assert (str(settings.model_dir), settings.port) == ("/m", 8080)
    assert ServingSettings.from_environ({}).workers >= 1


def test_default_workers_follow_the_runtime(trained_job, monkeypatch) -> None:
    """One worker per core on ONNX Runtime, one per 4 cores on TensorFlow (bench/onnx_threads.py)."""
    from albert_ner import environment

    opt_ml, _ = trained_job
    monkeypatch.setattr(environment, "available_cores", lambda: 8)
    settings = {runtime: ServingSettings.from_environ({"SM_MODEL_DIR": str(opt_ml.model_dir),
                                                       "ALBERT_NER_RUNTIME": runtime})
                for runtime in ("onnx-int8", "tensorflow")}
    assert (settings["onnx-int8"].workers, settings["onnx-int8"].intra_op_threads) == (8, 1)
    assert (settings["tensorflow"].workers, settings["tensorflow"].intra_op_threads) == (2, 4)
    # A directory that cannot tell (here: none) is sized for TensorFlow; its workers report the problem.
    assert ServingSettings.from_environ({"SM_MODEL_DIR": "/nonexistent", "ALBERT_NER_RUNTIME": "onnx"}).workers == 2


def test_ping_is_503_while_loading_and_500_when_loading_failed() -> None:
    release = threading.Event()

    def slow_load():
        release.wait(10)
        return ServedModel(fake_scored, "albert-ner-test")

    app = InferenceApp(ServingSettings.from_environ({"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}), slow_load)
    assert call(app, "GET", "/ping")[0] == 503
    assert call(app, "POST", "/invocations", b'{"text": "a"}')[0] == 503
    release.set()
    app._loader.join()
    assert call(app, "GET", "/ping")[0] == 200

    def broken_load():
        from albert_ner.errors import ModelDirectoryError

        raise ModelDirectoryError("the model directory has no model.weights.h5")

    app = InferenceApp(ServingSettings.from_environ({"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}), broken_load)
    app._loader.join()
    status, body = call(app, "GET", "/ping")
    assert status == 500 and "model.weights.h5" in json.loads(body)["error"]


def test_concurrent_requests_share_model_batches() -> None:
    batch_sizes: list[int] = []

    def slow_predict(texts: list[str]) -> list:
        batch_sizes.append(len(texts))
        time.sleep(0.02)
        return fake_predict(texts)

    batcher = DynamicBatcher(slow_predict, max_batch_size=16, max_delay=0.005)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda number: batcher.predict(["x" * (number + 1)]), range(64)))
    assert [result[0][0]["end"] for result in results] == [number + 1 for number in range(64)]
    assert sum(batch_sizes) == 64 and max(batch_sizes) <= 16 and len(batch_sizes) < 32
    big = batcher.predict(["x" * (number + 1) for number in range(40)])  # larger than a batch: cut, in order
    assert [entities[0]["end"] for entities in big] == list(range(1, 41)) and batch_sizes[-3:] == [16, 16, 8]


def test_a_failing_batch_fails_its_requests_only() -> None:
    def flaky(texts: list[str]) -> list:
        if "boom" in texts:
            raise RuntimeError("boom")
        return fake_predict(texts)

    batcher = DynamicBatcher(flaky, max_delay=0)
    with pytest.raises(RuntimeError):
        batcher.predict(["boom"])
    assert batcher.predict(["ok"])[0][0]["text"] == "ok"
