"""The labelling loop against a real Label Studio server (scripts/setup.sh installs it): a project with a
Chinese NER config, tasks imported, `albert-ner serve` connected as its ML backend with basic
authentication, predictions requested by Label Studio and stored, annotations submitted through its API,
both exports (JSON and JSON-MIN) read back by the job to the same spans, and Label Studio's training
trigger retraining the served model until the new version answers.

The texts hold what offsets go wrong on: leading spaces, full-width punctuation, an emoji and a character
outside the Basic Multilingual Plane, and a ``\\r\\n`` line end.
"""

from __future__ import annotations

import base64
import json
import os
import time

import pytest

from albert_ner.data import read_data_file
from albert_ner.model_directory import model_version
from conftest import TINY_HYPERPARAMETERS
from label_studio_server import EXECUTABLE, TOKEN, start_label_studio
from test_serve import Server

pytestmark = pytest.mark.label_studio

CONFIG = """<View>
  <Labels name="实体" toName="正文">
    <Label value="人名" background="red"/>
    <Label value="地名" background="blue"/>
    <Label value="机构" background="green"/>
  </Labels>
  <Text name="正文" value="$句子"/>
</View>"""
MAPPING = "PER=人名,LOC=地名,ORG=机构"
LABEL = {"PER": "人名", "LOC": "地名", "ORG": "机构"}
# Each text with the entities a person marks in it (found by str.find: Python's code-point offsets).
GOLD = [
    ("  张三在北京大学工作。", [("张三", "人名"), ("北京大学", "机构")]),
    ("😀李四去了上海！", [("李四", "人名"), ("上海", "地名")]),
    ("𠀋王芳在南京的清华大学工作。", [("王芳", "人名"), ("南京", "地名"), ("清华大学", "机构")]),
    ("第一行\r\n李四去了上海。", [("李四", "人名"), ("上海", "地名")]),
]


def gold_result(text: str, entities: list[tuple[str, str]]) -> list[dict]:
    return [{"from_name": "实体", "to_name": "正文", "type": "labels",
             "value": {"start": text.find(mention), "end": text.find(mention) + len(mention), "text": mention,
                       "labels": [label]}} for mention, label in entities]


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    if not EXECUTABLE.exists():
        if os.environ.get("ALBERT_NER_REQUIRE_LABEL_STUDIO") == "1":
            pytest.fail(f"{EXECUTABLE} is missing: scripts/setup.sh installs Label Studio")
        pytest.skip(f"Label Studio is not installed ({EXECUTABLE}; scripts/setup.sh installs it where PyPI is "
                    "reachable)")
    server = start_label_studio(tmp_path_factory.mktemp("label-studio"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def backend(trained_job, studio, tmp_path_factory):
    """`albert-ner serve` on the trained model, with basic auth and what it needs to retrain."""
    opt_ml, _ = trained_job
    hyperparameters = json.dumps({**TINY_HYPERPARAMETERS, "epochs": "2", "validation_split": "0.25"})
    server = Server(opt_ml.base, {
        "BASIC_AUTH_USER": "studio", "BASIC_AUTH_PASS": "backend-secret", "ALBERT_NER_LABEL_MAPPING": MAPPING,
        "LABEL_STUDIO_URL": studio.url, "LABEL_STUDIO_API_KEY": TOKEN,
        "ALBERT_NER_STATE_DIR": str(tmp_path_factory.mktemp("serve-state")),
        "ALBERT_NER_RETRAIN_HYPERPARAMETERS": hyperparameters, "ALBERT_NER_RUNTIME": "tensorflow"},
        command_line=True)
    server.wait_ready()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def project(studio, backend) -> dict:
    """A project with the tasks imported and the backend connected, as its settings page does it."""
    created = studio.api("POST", "/api/projects", {"title": "中文命名实体", "label_config": CONFIG})
    studio.api("POST", f"/api/projects/{created['id']}/import",
               [{"句子": text} for text, _ in GOLD])
    tasks = sorted(studio.api("GET", f"/api/tasks?project={created['id']}&page_size=100")["tasks"],
                   key=lambda task: task["id"])
    ml = studio.api("POST", "/api/ml", {"url": f"http://127.0.0.1:{backend.port}", "project": created["id"],
                                        "title": "albert-ner", "auth_method": "BASIC_AUTH",
                                        "basic_auth_user": "studio", "basic_auth_pass": "backend-secret"})
    return {"id": created["id"], "tasks": tasks, "ml": ml}


def stored_predictions(studio, task_id: int) -> list[dict]:
    return studio.api("GET", f"/api/predictions?task={task_id}")


def retrieve_predictions(studio, project: dict) -> None:
    """The data manager's "Retrieve predictions" action on every task."""
    studio.api("POST", f"/api/dm/actions?id=retrieve_tasks_predictions&project={project['id']}",
               {"selectedItems": {"all": False, "included": [task["id"] for task in project["tasks"]]}})


def test_label_studio_connects_the_backend_and_stores_its_predictions(studio, backend, project, trained_job):
    opt_ml, _ = trained_job
    assert project["ml"]["readable_state"] == "Connected", project["ml"]
    version = model_version(opt_ml.model_dir)
    assert project["ml"]["model_version"] == version
    retrieve_predictions(studio, project)
    auth = {"Authorization": "Basic " + base64.b64encode(b"studio:backend-secret").decode(),
            "Content-Type": "application/json"}
    found = 0
    for task, (text, _) in zip(project["tasks"], GOLD, strict=True):
        assert task["data"]["句子"] == text, "Label Studio stored the text as imported"
        (stored,) = stored_predictions(studio, task["id"])
        assert stored["model_version"] == version and 0 < stored["score"] <= 1
        # The backend's own answer for the text, through /invocations: Label Studio kept exactly those spans.
        status, _, body = backend.request("POST", "/invocations", json.dumps({"text": text}), auth)
        assert status == 200
        expected = {(entity["start"], entity["end"], entity["text"], LABEL[entity["type"]])
                    for entity in json.loads(body)["entities"] if entity["type"] in LABEL}
        regions = {(r["value"]["start"], r["value"]["end"], r["value"]["text"], r["value"]["labels"][0])
                   for r in stored["result"]}
        assert regions == expected, text
        assert all(text[start:end] == mention for start, end, mention, _ in regions)
        assert all(r["from_name"] == "实体" and r["to_name"] == "正文" for r in stored["result"])
        found += len(regions)
    assert found >= 4, "the model found entities to check offsets on"


def test_annotations_and_predictions_agree_and_both_exports_read_back(studio, project, tmp_path):
    for task, (text, entities) in zip(project["tasks"], GOLD, strict=True):
        studio.api("POST", f"/api/tasks/{task['id']}/annotations", {"result": gold_result(text, entities)})
        annotation = studio.api("GET", f"/api/tasks/{task['id']}/annotations")[0]
        spans = {(r["value"]["start"], r["value"]["end"]): r["value"]["labels"][0] for r in annotation["result"]}
        for region in stored_predictions(studio, task["id"])[0]["result"]:
            where = (region["value"]["start"], region["value"]["end"])
            mention = region["value"]["text"]
            if any(mention == gold for gold, _ in entities):  # the model found a gold entity: same offsets
                assert where in spans, (text, region["value"], spans)
    expected = [(text, sorted((text.find(m), text.find(m) + len(m), label) for m, label in entities))
                for text, entities in GOLD]
    for export_type in ("JSON", "JSON_MIN"):
        exported = studio.api("GET", f"/api/projects/{project['id']}/export?exportType={export_type}")
        path = tmp_path / f"export-{export_type}.json"
        path.write_text(json.dumps(exported, ensure_ascii=False), encoding="utf-8")
        sentences, _ = read_data_file(path)
        assert [("".join(s.tokens), sorted(tuple(e) for e in s.entities)) for s in sentences] == expected, export_type


def test_the_training_trigger_retrains_and_label_studio_gets_the_new_models_predictions(studio, backend, project,
                                                                                       trained_job):
    opt_ml, _ = trained_job
    before = model_version(opt_ml.model_dir)
    auth = {"Authorization": "Basic " + base64.b64encode(b"studio:backend-secret").decode()}
    studio.api("POST", f"/api/ml/{project['ml']['id']}/train", {})
    deadline = time.monotonic() + 600
    while True:
        health = json.loads(backend.request("GET", "/health", headers=auth)[2])
        training = health.get("training", {})
        if training.get("state") == "failed":
            raise AssertionError(f"the retrain failed: {training}\n{backend.output()}")
        if training.get("state") == "succeeded" and health["model_version"] == training["model_version"]:
            break
        assert time.monotonic() < deadline, f"no retrained model after 600 s: {health}\n{backend.output()}"
        time.sleep(1)
    after = health["model_version"]
    assert after != before and training["annotated_tasks"] == len(GOLD)
    retrieve_predictions(studio, project)
    for task in project["tasks"]:
        versions = {prediction["model_version"] for prediction in stored_predictions(studio, task["id"])}
        assert versions == {before, after}, "the new model's predictions are stored beside the old ones"
