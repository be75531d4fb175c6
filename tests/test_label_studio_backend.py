"""`serve` as a Label Studio ML backend: ``/health``, ``/setup`` and ``/predict`` with the bodies the Label
Studio server sends (label_studio/ml/api_connector.py), basic authentication, the labelling config's names
and labels, and the errors a project can cause; in-process on a fake model, then the real `serve` on the
trained model over real HTTP."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest

from albert_ner.environment import ServingSettings
from albert_ner.errors import AlbertNerError
from albert_ner.model_directory import model_version
from albert_ner.serving.batcher import BatcherClosed
from test_serve import SENTENCE, Server, call, ready_app

CONFIG = """<View>
  <Labels name="label" toName="text"><Label value="LEN"/><Label value="PER"/></Labels>
  <Text name="text" value="$text"/>
</View>"""


def post(app, path: str, body: object, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    # ASCII JSON, so that a lone surrogate can be sent (as a \u escape, as a JavaScript client would send it)
    status, answer = call(app, "POST", path, json.dumps(body).encode(), headers=headers)
    return status, json.loads(answer)


def predict_body(tasks: list[dict], config: str = CONFIG) -> dict:
    """What Label Studio posts to /predict (TaskSimpleSerializer's tasks, the project as "id.timestamp")."""
    return {"tasks": tasks, "project": "1.1796407713", "label_config": config,
            "params": {"login": None, "password": None, "context": None}}


def test_health_and_setup_answer_the_model_version() -> None:
    app = ready_app({})
    status, body = call(app, "GET", "/health")
    assert status == 200 and json.loads(body) == {"status": "UP", "model_version": "albert-ner-test"}
    status, answer = post(app, "/setup", {"project": "1.1796407713", "schema": CONFIG, "hostname": "http://localhost:8080",
                                          "access_token": "token", "extra_params": ""})
    assert status == 200 and answer == {"model_version": "albert-ner-test"}


def test_predict_answers_a_prediction_per_task_in_order_with_regions() -> None:
    app = ready_app({})
    tasks = [{"id": 7, "data": {"text": "张伟😀"}}, {"id": 8, "data": {"text": ""}}, {"id": 9, "data": {"text": "ab"}}]
    status, answer = post(app, "/predict", predict_body(tasks))
    assert status == 200
    results = answer["results"]
    assert [len(result["result"]) for result in results] == [1, 0, 1]
    assert all(result["model_version"] == "albert-ner-test" and result["score"] == 0.5 for result in results)
    region = results[0]["result"][0]
    assert region["from_name"] == "label" and region["to_name"] == "text" and region["type"] == "labels"
    assert region["value"] == {"start": 0, "end": 3, "text": "张伟😀", "labels": ["LEN"]} and region["score"] == 0.5


def test_the_configs_names_data_key_and_a_label_mapping_are_followed(caplog) -> None:
    config = CONFIG.replace('name="label"', 'name="ner"').replace('toName="text"', 'toName="body"') \
        .replace('name="text" value="$text"', 'name="body" value="$content"').replace('value="LEN"', 'value="长度"')
    app = ready_app({"ALBERT_NER_LABEL_MAPPING": "LEN=长度"})
    status, answer = post(app, "/predict", predict_body([{"id": 1, "data": {"content": "张伟"}}], config))
    region = answer["results"][0]["result"][0]
    assert status == 200 and (region["from_name"], region["to_name"]) == ("ner", "body")
    assert region["value"]["labels"] == ["长度"]
    # Without the mapping the type has no label there: left out, and counted in the log.
    with caplog.at_level(logging.INFO, logger="albert_ner.serving"):
        status, answer = post(ready_app({}), "/predict", predict_body([{"id": 1, "data": {"content": "张伟"}}] * 2,
                                                                      config))
    assert status == 200 and [result["result"] for result in answer["results"]] == [[], []]
    assert "left out entities of types the labelling config has no label for: 2 LEN" in caplog.text


@pytest.mark.parametrize(("path", "body", "status", "message"), [
    ("/setup", {"schema": "<View><Text name='text' value='$text'/></View>"}, 400,
     "the project's labelling config: the labelling config has no <Labels> control"),
    ("/setup", {"project": 1}, 400, '"schema" must be the project\'s labelling config'),
    ("/predict", predict_body([{"id": 3, "data": {"sentence": "x"}}]), 400,
     'task 3: the task has no text under data["text"]'),
    ("/predict", predict_body([{"id": 4}]), 400, 'task 4: expected an object with "data"'),
    ("/predict", {"label_config": CONFIG}, 400, 'expected {"tasks"'),
    ("/predict", predict_body([{"id": 5, "data": {"text": "a\ud800"}}]), 400, "lone surrogate"),
    ("/predict", predict_body([{"id": n, "data": {"text": "a"}} for n in range(1001)]), 413,
     "the limit is 1,000 per request (ALBERT_NER_MAX_TEXTS_PER_REQUEST)"),
])
def test_a_request_the_backend_cannot_answer_is_a_client_error_saying_why(path, body, status, message) -> None:
    got, answer = post(ready_app({}), path, body)
    assert got == status and message in answer["error"], answer


def test_wrong_methods_and_malformed_bodies() -> None:
    app = ready_app({})
    assert call(app, "POST", "/health")[0] == 405 and call(app, "GET", "/predict")[0] == 405
    status, body = call(app, "POST", "/predict", b"[" * 100_000)
    assert status == 400 and "nested too deeply" in json.loads(body)["error"]


def test_basic_auth_guards_every_route_but_ping() -> None:
    app = ready_app({"BASIC_AUTH_USER": "studio", "BASIC_AUTH_PASS": "s3cret:x"})
    good = {"Authorization": "Basic " + base64.b64encode(b"studio:s3cret:x").decode()}
    bad = {"Authorization": "Basic " + base64.b64encode(b"studio:wrong").decode()}
    assert call(app, "GET", "/ping")[0] == 200
    for headers in (None, bad, {"Authorization": "Basic %%%"}, {"Authorization": "Bearer abc"}):
        for method, path in (("GET", "/health"), ("POST", "/invocations"), ("POST", "/setup")):
            status, body = call(app, method, path, b"{}", headers=headers)
            assert status == 401 and "BASIC_AUTH_USER" in json.loads(body)["error"], (headers, path)
    assert call(app, "GET", "/health", headers=good)[0] == 200
    assert post(app, "/setup", {"schema": CONFIG}, good) == (200, {"model_version": "albert-ner-test"})
    with pytest.raises(AlbertNerError, match="only BASIC_AUTH_USER is set"):
        ServingSettings.from_environ({"BASIC_AUTH_USER": "studio"})


def test_basic_auth_takes_the_password_in_either_charset_clients_use() -> None:
    """RFC 7617 leaves the charset to the client: requests (which Label Studio uses) sends latin-1, curl and
    browsers UTF-8; either encoding of the right password passes, and nothing else does."""
    app = ready_app({"BASIC_AUTH_USER": "studio", "BASIC_AUTH_PASS": "pässwort"})

    def health(credentials: bytes) -> int:
        authorization = "Basic " + base64.b64encode(credentials).decode()
        return call(app, "GET", "/health", headers={"Authorization": authorization})[0]

    assert health("studio:pässwort".encode("latin-1")) == 200
    assert health("studio:pässwort".encode()) == 200  # UTF-8
    assert health(b"studio:passwort") == 401 and health("studio:pässwort ".encode()) == 401
    han = ready_app({"BASIC_AUTH_USER": "标注", "BASIC_AUTH_PASS": "密码"})  # no latin-1 form: UTF-8 only
    assert call(han, "GET", "/health", headers={
        "Authorization": "Basic " + base64.b64encode("标注:密码".encode()).decode()})[0] == 200


def test_health_is_503_while_the_model_loads() -> None:
    import threading

    from albert_ner.serving.application import InferenceApp, ServedModel
    from test_serve import fake_scored

    release = threading.Event()

    def slow_load() -> ServedModel:
        release.wait(10)
        return ServedModel(fake_scored, "albert-ner-test")

    app = InferenceApp(ServingSettings.from_environ({"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}), slow_load)
    assert call(app, "GET", "/health")[0] == 503 and post(app, "/setup", {"schema": CONFIG})[0] == 503
    release.set()
    app._loader.join()
    assert call(app, "GET", "/health")[0] == 200


def test_albert_ner_serve_answers_label_studio_on_the_trained_model(trained_job) -> None:
    """`albert-ner serve` (the same server as the image's `serve`), over real HTTP, through nginx."""
    opt_ml, _ = trained_job
    server = Server(opt_ml.base, {"BASIC_AUTH_USER": "studio", "BASIC_AUTH_PASS": "pw"}, command_line=True)
    try:
        server.wait_ready()
        auth = {"Authorization": "Basic " + base64.b64encode(b"studio:pw").decode(),
                "Content-Type": "application/json"}
        config = CONFIG.replace('<Label value="LEN"/>', '<Label value="LOC"/><Label value="ORG"/>')
        status, _, body = server.request("GET", "/health", headers=auth)
        version = model_version(opt_ml.model_dir)
        assert status == 200 and json.loads(body) == {"status": "UP", "model_version": version}
        status, _, body = server.request("POST", "/setup", json.dumps({"schema": config}), auth)
        assert status == 200 and json.loads(body) == {"model_version": version}
        tasks = [{"id": 1, "data": {"text": SENTENCE}}, {"id": 2, "data": {"text": "  \r\n李四去了上海。"}}]
        status, _, body = server.request("POST", "/predict", json.dumps(predict_body(tasks, config)), auth)
        assert status == 200, body
        results = json.loads(body)["results"]
        assert {(r["value"]["labels"][0], r["value"]["text"]) for r in results[0]["result"]} == {
            ("PER", "张三"), ("ORG", "北京大学")}
        for task, result in zip(tasks, results, strict=True):
            # The same entities as /invocations finds (those of types the config has), at the same offsets.
            text = task["data"]["text"]
            status, _, body = server.request("POST", "/invocations", json.dumps({"text": text}), auth)
            expected = {(e["start"], e["end"], e["text"], e["type"]) for e in json.loads(body)["entities"]
                        if e["type"] in ("PER", "LOC", "ORG")}
            assert {(r["value"]["start"], r["value"]["end"], r["value"]["text"], r["value"]["labels"][0])
                    for r in result["result"]} == expected
            assert all(text[r["value"]["start"]:r["value"]["end"]] == r["value"]["text"] for r in result["result"])
            assert 0 < result["score"] <= 1 and result["model_version"] == version
        assert server.request("POST", "/predict", json.dumps(predict_body(tasks, config)),
                              {"Content-Type": "application/json"})[0] == 401
    finally:
        server.stop()


def test_the_servers_state_directory_outlives_its_workers_and_goes_with_the_server(trained_job) -> None:
    """Without nginx, gunicorn's workers are forks of `serve` itself: one that exits must not take the
    retrains' state directory with it; `serve` removes it when it stops."""
    import os
    import re
    import signal
    import time

    opt_ml, _ = trained_job
    server = Server(opt_ml.base, {"ALBERT_NER_NGINX": "off", "ALBERT_NER_RUNTIME": "onnx"}, command_line=True)
    try:
        server.wait_ready()
        found = re.search(r"state directory \(retrains and the model they put in place\): (\S+)", server.output())
        assert found, server.output()
        state = Path(found.group(1))
        kept = state / "status.json"  # what a retrain leaves for every worker (the next one would make a new directory)
        kept.write_text('{"state": "succeeded"}', encoding="utf-8")
        children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
        (worker,) = map(int, children.read_text().split())
        os.kill(worker, signal.SIGTERM)  # gunicorn starts another
        deadline = time.monotonic() + 60
        while set(map(int, children.read_text().split())) in (set(), {worker}):
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.1)
        server.wait_ready()
        assert kept.is_file(), "a worker's exit removed the state directory"
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(60) == 0, server.output()
        assert not state.exists()
    finally:
        server.stop()


def test_replacing_the_model_drops_no_request_and_each_answer_names_its_model() -> None:
    """A request in the old model's line finishes there; the next ones go to the new model, whose version
    their answers carry; the old batcher's thread ends."""
    import threading

    from albert_ner.serving.application import ServedModel
    from test_serve import fake_scored

    started, release = threading.Event(), threading.Event()

    def held(texts: list[str]) -> list:
        started.set()
        release.wait(10)
        return fake_scored(texts)

    app = ready_app({}, held)
    old_batcher = app._serving[1]
    answers: dict[str, tuple[int, dict]] = {}
    body = predict_body([{"id": 1, "data": {"text": "张伟"}}])
    first = threading.Thread(target=lambda: answers.setdefault("old", post(app, "/predict", body)))
    first.start()
    assert started.wait(10)  # the old model is running the first request
    app.replace_model(ServedModel(fake_scored, "albert-ner-new"))
    answers["new"] = post(app, "/predict", body)
    release.set()
    first.join(10)
    assert answers["old"][0] == 200 and answers["old"][1]["results"][0]["model_version"] == "albert-ner-test"
    assert answers["new"][0] == 200 and answers["new"][1]["results"][0]["model_version"] == "albert-ner-new"
    old_batcher._thread.join(5)
    assert not old_batcher._thread.is_alive()
    with pytest.raises(BatcherClosed):
        old_batcher.submit(["x"])
