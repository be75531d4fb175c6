"""Retraining from Label Studio: the training trigger fetches the project's annotations with the API key,
`train` runs in its own process warm-started from the served model, and the workers switch to the new
model without dropping a request; a failed retrain leaves the served model and says why on /health. The key
is sent only in a header and is written nowhere."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import pytest

from albert_ner.data import read_data_file
from albert_ner.environment import ServingSettings
from albert_ner.label_studio.client import LabelStudioClient, LabelStudioError
from albert_ner.model_directory import model_version
from albert_ner.serving.application import create_app
from albert_ner.serving.retraining import KEPT_MODELS, Retrainer
from conftest import SAMPLE, TINY_HYPERPARAMETERS
from fake_label_studio import ACCESS_TOKEN, LEGACY_TOKEN, FakeLabelStudio, export_of, personal_access_token
from test_label_studio_backend import CONFIG, post, predict_body
from test_serve import call


@pytest.fixture
def studio():
    fake = FakeLabelStudio({1: export_of(read_data_file(SAMPLE / "train.txt")[0])})
    url = fake.start()
    yield fake, url
    fake.stop()


def test_the_client_signs_in_with_either_kind_of_key_and_names_what_went_wrong(studio) -> None:
    fake, url = studio
    assert len(LabelStudioClient(url, LEGACY_TOKEN).export(1)) == len(fake.exports[1])
    assert len(LabelStudioClient(url, personal_access_token()).export(1)) == len(fake.exports[1])
    assert fake.requests == [("/api/projects/1/export?exportType=JSON", f"Token {LEGACY_TOKEN}"),
                             ("/api/token/refresh/", ""),
                             ("/api/projects/1/export?exportType=JSON", f"Bearer {ACCESS_TOKEN}")]
    with pytest.raises(LabelStudioError, match="answered 401 Unauthorized .*: check LABEL_STUDIO_API_KEY") as error:
        LabelStudioClient(url, "wrong-key").export(1)
    assert "wrong-key" not in str(error.value)
    with pytest.raises(LabelStudioError, match="answered 404 .*: no such project"):
        LabelStudioClient(url, LEGACY_TOKEN).export(2)
    with pytest.raises(LabelStudioError, match="cannot reach Label Studio at http://127.0.0.1:9/"):
        LabelStudioClient("http://127.0.0.1:9", LEGACY_TOKEN).export(1)
    with pytest.raises(LabelStudioError, match="expected an http"):
        LabelStudioClient("ftp://studio", LEGACY_TOKEN)
    assert LabelStudioClient.from_environ({}) is None
    with pytest.raises(LabelStudioError, match="characters no Label Studio token has"):
        LabelStudioClient(url, "abc\r\nX-Injected: 1")


def test_the_client_follows_no_redirect_with_the_key(studio) -> None:
    """urllib would send the Authorization header on to wherever a redirect points."""
    fake, url = studio
    elsewhere = FakeLabelStudio()
    fake.redirect_to = elsewhere.start() + "/api/projects/1/export?exportType=JSON"
    try:
        with pytest.raises(LabelStudioError, match="answered 302 .*LABEL_STUDIO_URL must be Label Studio's own"):
            LabelStudioClient(url, LEGACY_TOKEN).export(1)
        assert elsewhere.requests == []
    finally:
        elsewhere.stop()


#: Retraining wants the server's requests authenticated.
AUTHENTICATED = {"BASIC_AUTH_USER": "studio", "BASIC_AUTH_PASS": "pw"}
AUTHORIZATION = {"Authorization": "Basic " + base64.b64encode(b"studio:pw").decode()}


def _settings(trained_job, tmp_path: Path, **environ: str) -> ServingSettings:
    """`serve`'s settings for the trained model, with a state directory for retrains."""
    opt_ml, _ = trained_job
    return ServingSettings.from_environ({
        "SM_MODEL_DIR": str(opt_ml.model_dir), "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
        "ALBERT_NER_STATE_DIR": str(tmp_path / "state"), **AUTHENTICATED, **environ})


def _health(app) -> dict:
    status, body = call(app, "GET", "/health", headers=AUTHORIZATION)
    assert status == 200, body
    return json.loads(body)


def _webhook(app, event: dict) -> tuple[int, dict]:
    return post(app, "/webhook", event, AUTHORIZATION)


def _wait_for_training(app, seconds: float = 600) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        health = _health(app)
        if health.get("training", {}).get("state") in ("succeeded", "failed"):
            return health
        time.sleep(0.5)
    raise AssertionError(f"the retrain did not finish in {seconds} s")


def test_the_training_trigger_retrains_and_the_new_model_answers(trained_job, tmp_path, studio, monkeypatch) -> None:
    fake, url = studio
    opt_ml, _ = trained_job
    key = personal_access_token()
    monkeypatch.setenv("LABEL_STUDIO_URL", url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", key)
    hyperparameters = json.dumps({**TINY_HYPERPARAMETERS, "epochs": "1", "validation_split": "0.2"})
    app = create_app(_settings(trained_job, tmp_path, ALBERT_NER_RETRAIN_HYPERPARAMETERS=hyperparameters))
    app._loader.join()
    before = model_version(opt_ml.model_dir)
    assert _health(app) == {"status": "UP", "model_version": before}

    event = {"action": "START_TRAINING", "project": {"id": 1, "title": "NER"}}
    assert _webhook(app, event) == (200, {"status": "training started", "project": 1})
    assert _webhook(app, event) == (200, {"status": "a retrain is running already", "project": 1})
    health = _wait_for_training(app)
    training = health["training"]
    assert training["state"] == "succeeded", training
    after = training["model_version"]
    assert after != before and training["annotated_tasks"] == len(fake.exports[1])

    deadline = time.monotonic() + 60  # the worker's follower loads the new model within a second or two
    while _health(app)["model_version"] != after:
        assert time.monotonic() < deadline, "the worker never switched to the retrained model"
        time.sleep(0.2)
    config = CONFIG.replace('<Label value="LEN"/>', '<Label value="LOC"/><Label value="ORG"/>')
    status, answer = post(app, "/predict", predict_body([{"id": 1, "data": {"text": "张三在北京大学工作。"}}], config),
                          AUTHORIZATION)
    assert status == 200 and answer["results"][0]["model_version"] == after

    # A worker started later (gunicorn restarts one) serves the retrained model from its first answer.
    restarted = create_app(_settings(trained_job, tmp_path))
    restarted._loader.join()
    assert _health(restarted)["model_version"] == after

    state = tmp_path / "state"
    log = (state / "run" / "training.log").read_text(encoding="utf-8")
    assert f"warm start: albert-ner model {before} from the `model` channel" in log
    assert (state / "models" / after / "model.weights.h5").is_file()
    for path in state.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert key.encode() not in path.read_bytes(), f"{path} holds the API key"


def test_a_failed_retrain_keeps_the_served_model_and_says_why(trained_job, tmp_path, studio, monkeypatch) -> None:
    fake, url = studio
    opt_ml, _ = trained_job
    fake.exports[1][0]["annotations"][0]["result"][0]["value"]["labels"] = ["药物"]
    monkeypatch.setenv("LABEL_STUDIO_URL", url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", LEGACY_TOKEN)
    app = create_app(_settings(trained_job, tmp_path, ALBERT_NER_RETRAIN_HYPERPARAMETERS='{"max_steps": "1"}'))
    app._loader.join()
    assert _webhook(app, {"action": "START_TRAINING", "project": {"id": 1}})[0] == 200
    health = _wait_for_training(app)
    assert health["model_version"] == model_version(opt_ml.model_dir)
    assert health["training"]["state"] == "failed"
    assert "entity types the `model` channel's model has no tags for: 药物" in health["training"]["reason"]


def test_annotation_events_are_counted_and_the_nth_retrains(trained_job, tmp_path, studio, monkeypatch) -> None:
    fake, url = studio
    fake.exports[7] = [{"id": 1, "data": {"text": "无人标注"}, "annotations": []}]
    monkeypatch.setenv("LABEL_STUDIO_URL", url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", LEGACY_TOKEN)
    app = create_app(_settings(trained_job, tmp_path, ALBERT_NER_RETRAIN_EVERY="4"))
    app._loader.join()
    event = {"action": "ANNOTATION_CREATED", "project": {"id": 7}, "annotation": {"id": 1}}
    assert _webhook(app, event) == (200, {"status": "counted", "project": 7, "annotations_since_training": 1})
    # An update corrects an annotation already counted; the bulk event brings as many as its list holds.
    update = {**event, "action": "ANNOTATION_UPDATED"}
    assert _webhook(app, update) == (200, {"status": "ignored", "action": "ANNOTATION_UPDATED"})
    bulk = {"action": "ANNOTATIONS_CREATED", "project": {"id": 7}, "annotation": [{"id": 2}, {"id": 3}]}
    assert _webhook(app, bulk) == (200, {"status": "counted", "project": 7, "annotations_since_training": 3})
    assert _webhook(app, event)[1]["status"] == "training started"
    health = _wait_for_training(app, 60)
    assert health["training"]["reason"] == "Label Studio project 7 has no annotated tasks to train on"
    assert _webhook(app, {"action": "PROJECT_UPDATED", "project": {"id": 7}}) == (
        200, {"status": "ignored", "action": "PROJECT_UPDATED"})


def test_without_label_studio_settings_the_trigger_says_what_is_missing(tmp_path) -> None:
    from test_serve import ready_app

    app = ready_app({"ALBERT_NER_STATE_DIR": str(tmp_path / "state"), **AUTHENTICATED})
    status, answer = _webhook(app, {"action": "START_TRAINING", "project": {"id": 1}})
    assert status == 503 and "retraining needs LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY" in answer["error"]
    status, answer = _webhook(ready_app(AUTHENTICATED), {"action": "START_TRAINING", "project": {"id": 1}})
    assert status == 503 and "no state directory" in answer["error"]
    assert _webhook(app, {"action": "START_TRAINING"})[0] == 400


def test_an_image_without_tensorflow_says_it_cannot_retrain(tmp_path, monkeypatch) -> None:
    import importlib.util

    from test_serve import ready_app

    monkeypatch.setenv("LABEL_STUDIO_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", LEGACY_TOKEN)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "tensorflow" else real_find_spec(name, *rest))
    app = ready_app({"ALBERT_NER_STATE_DIR": str(tmp_path / "state"), **AUTHENTICATED})
    status, answer = _webhook(app, {"action": "START_TRAINING", "project": {"id": 1}})
    assert status == 503 and "this image cannot train (it has no TensorFlow" in answer["error"]


def test_retraining_is_refused_while_the_server_is_open(tmp_path, monkeypatch) -> None:
    """Without BASIC_AUTH_*, anyone reaching the port could start retrains of any project the key reads."""
    from test_serve import ready_app

    monkeypatch.setenv("LABEL_STUDIO_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", LEGACY_TOKEN)
    app = ready_app({"ALBERT_NER_STATE_DIR": str(tmp_path / "state"), "ALBERT_NER_RETRAIN_EVERY": "2"})
    for action in ("START_TRAINING", "ANNOTATION_CREATED"):
        status, answer = post(app, "/webhook", {"action": action, "project": {"id": 1}})
        assert status == 403 and "set BASIC_AUTH_USER and BASIC_AUTH_PASS" in answer["error"], answer
    assert post(app, "/webhook", {"action": "PROJECT_UPDATED", "project": {"id": 1}})[1]["status"] == "ignored"
    assert not (tmp_path / "state" / "status.json").exists() and not (tmp_path / "state" / "annotations.json").exists()
    # Without ALBERT_NER_RETRAIN_EVERY, annotation events cannot retrain: ignored, whatever the auth.
    counting_off = ready_app({"ALBERT_NER_STATE_DIR": str(tmp_path / "state")})
    assert post(counting_off, "/webhook", {"action": "ANNOTATION_CREATED", "project": {"id": 1}}) == (
        200, {"status": "ignored", "action": "ANNOTATION_CREATED"})


def test_train_holds_the_lock_and_is_stopped_at_the_timeout(trained_job, tmp_path, studio, monkeypatch) -> None:
    """`train` itself holds the training lock (so a killed worker's retrain still keeps others out), its pid
    is on /health, and ALBERT_NER_RETRAIN_TIMEOUT stops it."""
    fake, url = studio
    monkeypatch.setenv("LABEL_STUDIO_URL", url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", LEGACY_TOKEN)
    endless = json.dumps({**TINY_HYPERPARAMETERS, "epochs": "1000", "early_stopping_patience": "0"})
    app = create_app(_settings(trained_job, tmp_path, ALBERT_NER_RETRAIN_TIMEOUT="8",
                               ALBERT_NER_RETRAIN_HYPERPARAMETERS=endless))
    app._loader.join()
    assert _webhook(app, {"action": "START_TRAINING", "project": {"id": 1}})[0] == 200
    deadline = time.monotonic() + 30
    while "pid" not in (training := _health(app)["training"]):
        assert time.monotonic() < deadline, training
        time.sleep(0.1)
    pid, lock = training["pid"], str(tmp_path / "state" / "training.lock")
    assert lock in {os.readlink(descriptor) for descriptor in Path(f"/proc/{pid}/fd").iterdir()}
    training = _wait_for_training(app, 120)["training"]
    assert training["state"] == "failed" and training["pid"] == pid
    assert training["reason"].startswith("train ran past ALBERT_NER_RETRAIN_TIMEOUT (8 s) and was stopped")
    assert not Path(f"/proc/{pid}").exists()  # killed and reaped
    assert _webhook(app, {"action": "START_TRAINING", "project": {"id": 1}})[1]["status"] == "training started"
    assert _wait_for_training(app, 120)["training"]["state"] == "failed"  # stopped at the timeout again


def test_a_retrain_whose_worker_died_shows_as_interrupted(trained_job, tmp_path) -> None:
    import fcntl

    opt_ml, _ = trained_job
    retrainer = Retrainer(tmp_path, None, {}, origin=opt_ml.model_dir)
    (tmp_path / "status.json").write_text(json.dumps({"state": "running", "project": 1, "pid": 12345}))
    with open(tmp_path / "training.lock", "a+b") as lock:  # another process's retrain, still running
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert retrainer.status() == {"state": "running", "project": 1, "pid": 12345}
    status = retrainer.status()  # nobody holds the lock: whoever wrote "running" is gone
    assert status is not None and status["state"] == "interrupted" and status["pid"] == 12345
    assert "start training again" in status["reason"]


def test_the_state_directory_serves_only_retrains_of_this_servers_model(trained_job, tmp_path) -> None:
    """A kept ALBERT_NER_STATE_DIR and a new --model-dir: the old lineage's retrain is not brought back."""
    opt_ml, _ = trained_job
    retrainer = Retrainer(tmp_path, None, {}, origin=opt_ml.model_dir)
    assert retrainer.origin == model_version(opt_ml.model_dir) and retrainer.current_model_dir() is None
    current = tmp_path / "current"
    current.write_text(json.dumps({"model_dir": "/elsewhere/albert-ner-1", "origin": "albert-ner-000000000000"}))
    assert retrainer.current_model_dir() is None
    current.write_text(json.dumps({"model_dir": "/elsewhere/albert-ner-1", "origin": retrainer.origin}))
    assert retrainer.current_model_dir() == Path("/elsewhere/albert-ner-1")
    current.write_text("/elsewhere/albert-ner-1\n")  # not this format
    assert retrainer.current_model_dir() is None


def test_only_the_newest_retrained_models_are_kept(tmp_path) -> None:
    models = tmp_path / "models"
    for age, name in enumerate(["v5", "v4", "v3", "v2", "v1"]):
        (models / name).mkdir(parents=True)
        os.utime(models / name, (time.time() - age * 60,) * 2)
    Retrainer._prune(models, keep={(models / "v1").resolve()})  # v1, the oldest, is still being served
    assert sorted(path.name for path in models.iterdir()) == ["v1", "v3", "v4", "v5"]
    assert KEPT_MODELS == 3


def test_a_retrained_model_that_does_not_load_is_tried_again_and_shown(trained_job, tmp_path, monkeypatch) -> None:
    """A worker keeps serving what it has, says why on /health, retries, and switches once the load works;
    a worker started after that loads the retrained model first."""
    from albert_ner.serving import application
    from test_serve import fake_scored

    opt_ml, _ = trained_job
    monkeypatch.setattr(application, "RETRAIN_POLL_SECONDS", 0.05)
    monkeypatch.setattr(application, "RELOAD_RETRY_SECONDS", 0.5)
    settings = _settings(trained_job, tmp_path)
    loads = []

    def reload(directory: Path) -> application.ServedModel:
        loads.append(directory)
        if len(loads) == 1:
            raise OSError("the disk hiccupped")
        return application.ServedModel(fake_scored, "albert-ner-retrained", directory)

    def first() -> application.ServedModel:
        return application.ServedModel(fake_scored, "albert-ner-first", opt_ml.model_dir)

    app = application.InferenceApp(settings, first, reload)
    app._loader.join()
    assert _health(app)["model_version"] == "albert-ner-first"
    retrained = tmp_path / "state" / "models" / "albert-ner-retrained"
    (tmp_path / "state" / "current").write_text(json.dumps({"model_dir": str(retrained), "origin":
                                                            model_version(opt_ml.model_dir)}))
    deadline = time.monotonic() + 30
    while "retrained_model_error" not in (health := _health(app)):
        assert time.monotonic() < deadline, health
        time.sleep(0.02)
    assert health["model_version"] == "albert-ner-first"
    assert health["retrained_model_error"].startswith(f"cannot load the retrained model in {retrained} (OSError")
    while (health := _health(app))["model_version"] != "albert-ner-retrained":
        assert time.monotonic() < deadline, health
        time.sleep(0.02)
    assert "retrained_model_error" not in health and loads == [retrained, retrained]

    restarted = application.InferenceApp(settings, first, reload)
    restarted._loader.join()
    assert _health(restarted)["model_version"] == "albert-ner-retrained"


def test_a_retrains_train_stops_when_its_worker_dies(trained_job, tmp_path) -> None:
    """`train` started the way a retrain starts it (child_process.command) gets SIGTERM when the process
    that started it is killed, and stops: nothing trains on with nobody to put its model in place."""
    import signal
    import subprocess
    import sys

    from conftest import OptMl, sample_job

    opt_ml = OptMl(tmp_path / "opt_ml")
    sample_job(opt_ml, {**TINY_HYPERPARAMETERS, "epochs": "1000", "early_stopping_patience": "0"})
    worker = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys, time\n"
         "from albert_ner.serving import child_process\n"
         "child = subprocess.Popen(child_process.command('train', '--base-dir', sys.argv[1]))\n"
         "print(child.pid, flush=True)\n"
         "time.sleep(600)\n", str(opt_ml.base)], stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout is not None
        train = int(worker.stdout.readline())
        deadline = time.monotonic() + 120
        while not (opt_ml.base / "checkpoints").exists():  # training, well past its imports
            assert time.monotonic() < deadline and _running(train), "train never started training"
            time.sleep(0.2)
        worker.kill()
        worker.wait()
        deadline = time.monotonic() + 120
        while _running(train):
            assert time.monotonic() < deadline, "train outlived the worker that started it"
            time.sleep(0.2)
    finally:
        worker.kill()
        if _running(train):
            os.kill(train, signal.SIGKILL)


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, waiting for whoever inherited it to reap it, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
