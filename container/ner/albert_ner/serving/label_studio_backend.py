"""The Label Studio ML backend protocol, on the same port as ``/ping`` and ``/invocations``: a Label Studio
project given this server's URL as its model gets the model's entities as pre-annotations.

What the Label Studio server (1.x) sends and expects, read from its ``ml/api_connector.py`` and
``ml/models.py``:

- ``GET /health`` when it connects (1 s timeout): any 2xx JSON. Here ``{"status": "UP", "model_version"}``;
  503 while the model loads, 500 if it failed to.
- ``POST /setup`` with ``{"project", "schema": labelling config, "hostname", "access_token",
  "extra_params"}`` on connecting and before every predict (3 s timeout): it reads ``model_version``.
  The config is checked here, so a project without a usable ``<Labels>`` is told why when it connects.
- ``POST /predict`` with ``{"tasks": [{"id", "data", ...}], "project", "label_config", "params"}`` (100 s
  timeout): it wants ``{"results": [prediction per task, in order]}``, each ``{"result", "score",
  "model_version"}`` (:mod:`albert_ner.label_studio.predictions`).
- ``POST /webhook`` with ``{"action", "project": {...}, ...}``: the project's webhook, which Label Studio
  makes when the backend is connected. ``START_TRAINING`` (its *Start training* button, ``POST
  /api/ml/ID/train``) retrains (:mod:`albert_ner.serving.retraining`); annotation events are counted, and
  with ``ALBERT_NER_RETRAIN_EVERY=N`` the N-th since the last retrain starts one. Both want the server's
  requests authenticated (``BASIC_AUTH_*``): open, anyone reaching the port could start retrains.

Entity types the config has no label for are left out and counted in the log. With ``BASIC_AUTH_USER``
and ``BASIC_AUTH_PASS`` set (the names Label Studio's own ML backends read), every route but ``/ping``
wants those credentials, which Label Studio sends when the connection's authentication is set to them.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from albert_ner.confidence import ScoredPrediction
from albert_ner.label_studio.config import LabelConfigError, LabellingInterface, parse_label_config
from albert_ner.label_studio.predictions import prediction
from albert_ner.serving.http_codec import RequestError, require_unicode

log = logging.getLogger("albert_ner.serving")

HEALTH, SETUP, PREDICT, WEBHOOK = "/health", "/setup", "/predict", "/webhook"
PATHS = (HEALTH, SETUP, PREDICT, WEBHOOK)
START_TRAINING = "START_TRAINING"
#: The events that bring new annotations (an update corrects one already counted): ``annotation`` holds
#: the annotation, or a list of them for the bulk event.
ANNOTATION_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATIONS_CREATED")
#: Parsed labelling configs kept per worker (a server is usually connected to a project or two).
_CACHED_CONFIGS = 32


class LabelStudioBackend:
    """Reads Label Studio's requests and writes its answers; the application does the HTTP and the model."""

    def __init__(self, mapping: Mapping[str, str]):
        self.mapping = dict(mapping)
        self._interfaces: OrderedDict[str, LabellingInterface] = OrderedDict()
        self._lock = threading.Lock()  # the request threads share the cache

    def interface(self, config: Any, field: str) -> LabellingInterface:
        """The labelling interface of a request's config (field ``field``), parsed once per config."""
        if not isinstance(config, str) or not config.strip():
            raise RequestError(400, f'"{field}" must be the project\'s labelling config (XML), found '
                                    f"{type(config).__name__}")
        with self._lock:
            cached = self._interfaces.get(config)
            if cached is not None:
                self._interfaces.move_to_end(config)
                return cached
        try:
            interface = parse_label_config(config, self.mapping)
        except LabelConfigError as error:
            raise RequestError(400, f"the project's labelling config: {error}") from None
        unknown = sorted(set(self.mapping.values()) - set(interface.labels))
        if unknown:
            log.warning("ALBERT_NER_LABEL_MAPPING names labels the labelling config lacks: %s", ", ".join(unknown))
        with self._lock:
            self._interfaces[config] = interface
            if len(self._interfaces) > _CACHED_CONFIGS:
                self._interfaces.popitem(last=False)
        return interface

    def setup(self, body: Any, model_version: str) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise RequestError(400, 'expected {"schema": labelling config, "project": ...}')
        interface = self.interface(body.get("schema"), "schema")
        log.info("Label Studio project %s set up: <Labels name=%r> over <Text name=%r> ($%s), labels %s",
                 body.get("project"), interface.from_name, interface.to_name, interface.data_key,
                 ", ".join(interface.labels))
        return {"model_version": model_version}

    def texts(self, body: Any) -> tuple[LabellingInterface, list[str]]:
        """The interface and the tasks' texts of a ``/predict`` request, in order."""
        if not isinstance(body, dict) or not isinstance(body.get("tasks"), list):
            raise RequestError(400, 'expected {"tasks": [...], "label_config": ...}')
        interface = self.interface(body.get("label_config"), "label_config")
        texts = []
        for number, task in enumerate(body["tasks"], start=1):
            name = f"task {task.get('id', number) if isinstance(task, dict) else number}"
            if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
                raise RequestError(400, f'{name}: expected an object with "data"')
            try:
                text = interface.text_of(task["data"])
            except LabelConfigError as error:
                raise RequestError(400, f"{name}: {error}") from None
            require_unicode(text, number)
            texts.append(text)
        return interface, texts

    @staticmethod
    def results(texts: Sequence[str], predictions: Sequence[ScoredPrediction], interface: LabellingInterface,
                model_version: str) -> dict[str, Any]:
        left_out: Counter[str] = Counter()
        results = [prediction(text, scored, interface, model_version, left_out)
                   for text, scored in zip(texts, predictions, strict=True)]
        if left_out:
            log.info("left out entities of types the labelling config has no label for: %s (map them with "
                     "ALBERT_NER_LABEL_MAPPING=TYPE=LABEL,...)",
                     ", ".join(f"{count} {entity_type}" for entity_type, count in sorted(left_out.items())))
        return {"results": results}


def event(body: Any) -> tuple[str, int | None]:
    """A webhook event's action and project id (``project`` is an object with ``id`` in Label Studio's
    webhooks; the ML backend's own calls name it ``"ID.TIMESTAMP"``)."""
    if not isinstance(body, dict) or not isinstance(body.get("action"), str):
        raise RequestError(400, 'expected a Label Studio webhook event {"action": ..., "project": ...}')
    project = body.get("project")
    if isinstance(project, dict):
        project = project.get("id")
    if isinstance(project, str) and project.split(".", 1)[0].isdigit():
        project = int(project.split(".", 1)[0])
    return body["action"], project if isinstance(project, int) and not isinstance(project, bool) else None


def annotations_in(body: dict[str, Any]) -> int:
    """How many annotations an annotation event brings: the bulk event's list, else one."""
    annotation = body.get("annotation")
    return len(annotation) if isinstance(annotation, list) else 1
