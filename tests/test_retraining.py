"""Retraining from Label Studio: the training trigger fetches the project's annotations with the API key,
`train` runs in its own process warm-started from the served model, and the workers switch to the new
model without dropping a request; a failed retrain leaves the served model and says why on /health. The key
is sent only in a header and is written nowhere."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from albert_ner.data import read_data_file
from albert_ner.environment import ServingSettings
from albert_ner.label_studio.client import LabelStudioClient, LabelStudioError
from albert_ner.model_directory import model_version
from albert_ner.serving.application import create_app
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


def _settings(trained_job, tmp_path: Path, **environ: str) -> ServingSettings:
    """`serve`'s settings for the trained model, with a state directory for retrains."""
    opt_ml, _ = trained_job
    return ServingSettings.from_environ({
        "SM_MODEL_DIR": str(opt_ml.model_dir), "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
        "ALBERT_NER_STATE_DIR": str(tmp_path / "state"), **environ})


def _wait_for_training(app, seconds: float = 600) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status, body = call(app, "GET", "/health")
        training = json.loads(body).get("training", {})
        if training.get("state") in ("succeeded", "failed"):
            return json.loads(body)
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
    assert json.loads(call(app, "GET", "/health")[1]) == {"status": "UP", "model_version": before}

    event = {"action": "START_TRAINING", "project": {"id": 1, "title": "NER"}}
    assert post(app, "/webhook", event) == (200, {"status": "training started", "project": 1})
    assert post(app, "/webhook", event) == (200, {"status": "a retrain is running already", "project": 1})
    health = _wait_for_training(app)
    training = health["training"]
    assert training["state"] == "succeeded", training
    after = training["model_version"]
    assert after != before and training["annotated_tasks"] == len(fake.exports[1])

    deadline = time.monotonic() + 60  # the worker's follower loads the new model within a second or two
    while json.loads(call(app, "GET", "/health")[1])["model_version"] != after:
        assert time.monotonic() < deadline, "the worker never switched to the retrained model"
        time.sleep(0.2)
    config = CONFIG.replace('<Label value="LEN"/>', '<Label value="LOC"/><Label value="ORG"/>')
    status, answer = post(app, "/predict", predict_body([{"id": 1, "data": {"text": "张三在北京大学工作。"}}], config))
    assert status == 200 and answer["results"][0]["model_version"] == after

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
    assert post(app, "/webhook", {"action": "START_TRAINING", "project": {"id": 1}})[0] == 200
    health = _wait_for_training(app)
    assert health["model_version"] == model_version(opt_ml.model_dir)
    assert health["training"]["state"] == "failed"
    assert "entity types the `model` channel's model has no tags for: 药物" in health["training"]["reason"]


def test_annotation_events_are_counted_and_the_nth_retrains(trained_job, tmp_path, studio, monkeypatch) -> None:
    fake, url = studio
    fake.exports[7] = [{"id": 1, "data": {"text": "无人标注"}, "annotations": []}]
    monkeypatch.setenv("LABEL_STUDIO_URL", url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", LEGACY_TOKEN)
    app = create_app(_settings(trained_job, tmp_path, ALBERT_NER_RETRAIN_EVERY="2"))
    app._loader.join()
    event = {"action": "ANNOTATION_CREATED", "project": {"id": 7}, "annotation": {"id": 1}}
    assert post(app, "/webhook", event) == (200, {"status": "counted", "project": 7, "annotations_since_training": 1})
    assert post(app, "/webhook", event)[1]["status"] == "training started"
    health = _wait_for_training(app, 60)
    assert health["training"]["reason"] == "Label Studio project 7 has no annotated tasks to train on"
    assert post(app, "/webhook", {"action": "PROJECT_UPDATED", "project": {"id": 7}}) == (
        200, {"status": "ignored", "action": "PROJECT_UPDATED"})


def test_without_label_studio_settings_the_trigger_says_what_is_missing(tmp_path) -> None:
    from test_serve import ready_app

    app = ready_app({"ALBERT_NER_STATE_DIR": str(tmp_path / "state")})
    status, answer = post(app, "/webhook", {"action": "START_TRAINING", "project": {"id": 1}})
    assert status == 503 and "retraining needs LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY" in answer["error"]
    status, answer = post(ready_app({}), "/webhook", {"action": "START_TRAINING", "project": {"id": 1}})
    assert status == 503 and "no state directory" in answer["error"]
    assert post(app, "/webhook", {"action": "START_TRAINING"})[0] == 400


def test_an_image_without_tensorflow_says_it_cannot_retrain(tmp_path, monkeypatch) -> None:
    import importlib.util

    from test_serve import ready_app

    monkeypatch.setenv("LABEL_STUDIO_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", LEGACY_TOKEN)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "tensorflow" else real_find_spec(name, *rest))
    app = ready_app({"ALBERT_NER_STATE_DIR": str(tmp_path / "state")})
    status, answer = post(app, "/webhook", {"action": "START_TRAINING", "project": {"id": 1}})
    assert status == 503 and "this image cannot train (it has no TensorFlow" in answer["error"]
