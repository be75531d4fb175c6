"""SageMaker Python SDK v2 local mode drives the image end to end, with no AWS account.

`Estimator(image_uri=..., instance_type="local")` writes the /opt/ml tree, starts the image through
docker compose with `train`, and packs model.tar.gz, exactly as the notebook's local-mode cell does.
`estimator.deploy(instance_type="local")` then starts the same image with `serve` (docker compose
publishes its port 8080), waits for `/ping`, and the SDK's predictor sends real requests; a local batch
transform runs a file through it the way SageMaker batch transform does. A dummy role ARN and a region
stand in for credentials; file:// data and output keep S3 out of it.

The model is trained once per module and every test here uses it. The serving tests run only where the
SDK addresses the endpoint at `localhost`, and publish the serving port on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .docker_harness import timed
from .sagemaker_layout import MODEL_ARTIFACTS, TINY_HYPERPARAMETERS, write_channels

pytestmark = pytest.mark.docker

DUMMY_ROLE = "arn:aws:iam::111111111111:role/service-role/AmazonSageMaker-ExecutionRole-local"
SENTENCE = "张伟在北京的清华大学工作。"
TEXTS = [SENTENCE, "李明昨天从上海到了香港。", "新华社记者报道，国务院总理在人民大会堂会见了来访的客人。", ""]
ENTITY_KEYS = {"type", "start", "end", "text", "score"}


@pytest.fixture(scope="module")
def sdk_offline(tmp_path_factory):
    """A region, fake credentials and the SDK's telemetry turned off (the network is closed)."""
    config = tmp_path_factory.mktemp("sagemaker-config") / "sagemaker-config.yaml"
    config.write_text("SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SAGEMAKER_USER_CONFIG_OVERRIDE", str(config))
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        patch.setenv("AWS_REGION", "us-east-1")
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        patch.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
        yield


@dataclass
class LocalTraining:
    estimator: object
    session: object
    output: Path
    archive: Path


@pytest.fixture(scope="module")
def local_training(image, sdk_offline, tmp_path_factory) -> Iterator[LocalTraining]:
    """One `Estimator(instance_type="local").fit(...)` on the tiny configuration, shared by the module."""
    sagemaker = pytest.importorskip("sagemaker", reason="pip install 'sagemaker<3' (in the [test] extras)")
    from sagemaker.estimator import Estimator
    from sagemaker.local import LocalSession

    root = tmp_path_factory.mktemp("local-mode")
    channels = write_channels(root / "data")
    output = root / "output"
    output.mkdir()
    session = LocalSession()
    session.config = {"local": {"local_code": True}}
    estimator = Estimator(
        image_uri=image,
        role=DUMMY_ROLE,
        instance_count=1,
        instance_type="local",
        hyperparameters=TINY_HYPERPARAMETERS,
        output_path=f"file://{output}",
        sagemaker_session=session,
        base_job_name="albert-ner-local",
    )
    try:
        with timed(f"SageMaker SDK {sagemaker.__version__} local mode fit"):
            estimator.fit({name: f"file://{path}" for name, path in channels.items()}, wait=True, logs=True)
        model_data = estimator.model_data
        assert model_data.startswith("file://"), model_data
        yield LocalTraining(estimator, session, output, Path(model_data[len("file://"):]))
    finally:
        # docker compose stops the job's and the endpoints' containers but leaves them behind.
        exited = subprocess.run(["docker", "ps", "-aq", "--filter", f"ancestor={image}", "--filter", "status=exited"],
                                capture_output=True, text=True).stdout.split()
        if exited:
            subprocess.run(["docker", "rm", *exited], capture_output=True)


def test_estimator_local_mode_trains_and_returns_model_tar_gz(local_training):
    archive, output = local_training.archive, local_training.output
    assert archive.is_file(), f"{archive} missing; output holds {sorted(p.name for p in output.rglob('*'))}"
    with tarfile.open(archive) as packed:
        names = {Path(name).as_posix() for name in packed.getnames()}  # relative, "./" dropped
    print(f"{archive}: {sorted(names)}")
    for name in MODEL_ARTIFACTS:
        assert name in names, f"{name} not in model.tar.gz"


# ------------------------------------------------------------------------------------------- serving
def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def serving_session(local_training, monkeypatch):
    """The training session, set to serve on a free port published on loopback only, where the SDK
    calls the endpoint at localhost."""
    from sagemaker.local import image as local_image
    from sagemaker.local.utils import get_docker_host

    host = get_docker_host()  # what the SDK's /ping and /invocations calls will address
    if host not in ("localhost", "127.0.0.1", "::1"):
        pytest.skip(f"the SDK would reach the endpoint at {host} (rootless or remote Docker); this test "
                    "only talks to loopback")
    # The SDK publishes "PORT:8080", which docker binds on every interface (dockerd 20.10 has no default
    # host address for user-defined networks such as sagemaker-local). Bind it to 127.0.0.1 instead.
    create_docker_host = local_image._SageMakerContainer._create_docker_host

    def published_on_loopback(container, *args, **kwargs):
        service = create_docker_host(container, *args, **kwargs)
        if "ports" in service:
            service["ports"] = [f"127.0.0.1:{mapping}" for mapping in service["ports"]]
        return service

    monkeypatch.setattr(local_image._SageMakerContainer, "_create_docker_host", published_on_loopback)
    session = local_training.session
    port = free_loopback_port()
    session.config = {"local": {"local_code": True, "serving_port": port}}
    yield session
    session.config = {"local": {"local_code": True}}


@dataclass
class Deployment:
    """What deploys and runs batch transform: the trained Estimator on its own image, or a Model of the same
    model.tar.gz on the ONNX serving image (container/Dockerfile.onnx)."""

    model: object
    image: str


@pytest.fixture(params=["training image", "onnx image"])
def deployment(request, local_training, image) -> Deployment:
    if request.param == "training image":
        return Deployment(local_training.estimator, image)
    from sagemaker.model import Model
    from sagemaker.predictor import Predictor

    onnx_image = request.getfixturevalue("onnx_image")
    model = Model(image_uri=onnx_image, model_data=f"file://{local_training.archive}", role=DUMMY_ROLE,
                  sagemaker_session=local_training.session, predictor_cls=Predictor)
    return Deployment(model, onnx_image)


def running_containers(image: str) -> list[str]:
    listed = subprocess.run(["docker", "ps", "--filter", f"ancestor={image}", "--format", "{{.Names}}"],
                            capture_output=True, text=True, check=True)
    return listed.stdout.split()


def start_reference_prediction(archive: Path, texts: list[str], workdir: Path) -> tuple[subprocess.Popen, Path]:
    """`albert-ner predict` on the host, on the same model.tar.gz: what the endpoint must answer.
    Started before the endpoint so that the two TensorFlow start-ups overlap."""
    model_dir = workdir / "model"
    model_dir.mkdir()
    with tarfile.open(archive) as packed:
        packed.extractall(model_dir, filter="data")
    source = workdir / "texts.jsonl"
    source.write_text("".join(json.dumps({"text": text}, ensure_ascii=False) + "\n" for text in texts),
                      encoding="utf-8")
    output = workdir / "reference.jsonl"
    with open(workdir / "reference.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "albert_ner", "predict", "--model-dir", str(model_dir), "--input", str(source),
             "--output", str(output)],
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""},
            stdout=log, stderr=subprocess.STDOUT)
    return process, output


def reference_entities(process: subprocess.Popen, output: Path) -> list[list[dict]]:
    returncode = process.wait(timeout=300)
    log = (output.parent / "reference.log").read_text(encoding="utf-8", errors="replace")
    assert returncode == 0, f"albert-ner predict exited {returncode}:\n{log[-3000:]}"
    return [json.loads(line)["entities"] for line in output.read_text(encoding="utf-8").splitlines()]


def check_entities(text: str, entities: object) -> None:
    assert isinstance(entities, list), f"entities is {type(entities).__name__}: {entities!r}"
    for entity in entities:
        assert isinstance(entity, dict) and set(entity) == ENTITY_KEYS, entity
        assert isinstance(entity["type"], str) and entity["type"], entity
        assert 0 <= entity["start"] < entity["end"] <= len(text), entity
        assert entity["text"] == text[entity["start"]:entity["end"]], entity
        assert isinstance(entity["score"], float) and 0.0 <= entity["score"] <= 1.0, entity


def assert_same_entities(found: list[list[dict]], expected: list[list[dict]]) -> None:
    """Spans and types exactly; scores to float32 rounding (a score's last bits depend on the batch a text
    was padded into, and the endpoint batches differently from `albert-ner predict`)."""
    def spans(entities: list[list[dict]]) -> list[list[dict]]:
        return [[{key: value for key, value in entity.items() if key != "score"} for entity in row] for row in entities]

    assert spans(found) == spans(expected), (found, expected)
    for row, expected_row in zip(found, expected, strict=True):
        for entity, expected_entity in zip(row, expected_row, strict=True):
            assert abs(entity["score"] - expected_entity["score"]) < 1e-5, (entity, expected_entity)


def test_estimator_deploy_serves_predictions_through_local_mode(local_training, serving_session, deployment,
                                                               tmp_path):
    from sagemaker.deserializers import JSONDeserializer, JSONLinesDeserializer
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import JSONLinesSerializer, JSONSerializer

    reference_process, reference_output = start_reference_prediction(local_training.archive, TEXTS, tmp_path)
    endpoint_name = f"albert-ner-local-{os.getpid()}"
    predictor = None
    try:
        with timed("local mode deploy (docker compose up IMAGE serve, until /ping answers 200)"):
            # Local mode returns once /ping answers 200; wait=True would then sleep 30 s before asking
            # the local client whether the endpoint is InService.
            predictor = deployment.model.deploy(
                initial_instance_count=1, instance_type="local", endpoint_name=endpoint_name,
                serializer=JSONSerializer(), deserializer=JSONDeserializer(), wait=False)
            assert serving_session.describe_endpoint(endpoint_name)["EndpointStatus"] == "InService"
        published = subprocess.run(["docker", "ps", "--filter", f"ancestor={deployment.image}", "--format",
                                    "{{.Ports}}"],
                                   capture_output=True, text=True, check=True).stdout.strip()
        print(f"endpoint container publishes {published}")
        assert published.startswith("127.0.0.1:") and "0.0.0.0" not in published, published
        with timed("local endpoint: JSON, JSON instances and JSON Lines requests"):
            single = predictor.predict({"text": SENTENCE})
            instances = predictor.predict({"instances": TEXTS})
            lines = Predictor(endpoint_name, sagemaker_session=serving_session, serializer=JSONLinesSerializer(),
                              deserializer=JSONLinesDeserializer()).predict([{"text": text} for text in TEXTS])
    except BaseException:
        reference_process.kill()
        raise
    finally:
        try:
            with timed("local mode delete_endpoint (docker compose stops the container)"):
                if predictor is not None:
                    predictor.delete_model()  # first: it finds the model through the endpoint config
                    predictor.delete_endpoint()
                else:  # deploy() failed (e.g. /ping never answered 200): its container may still be up
                    serving_session.sagemaker_client.delete_endpoint(EndpointName=endpoint_name)
        finally:
            left = running_containers(deployment.image)
            if left:  # never leave a server behind, even when the assertion below fails
                subprocess.run(["docker", "rm", "-f", *left], capture_output=True)
    assert not left, f"containers still running after delete_endpoint: {left}"

    print(f"POST /invocations {{\"text\": {SENTENCE!r}}} -> {json.dumps(single, ensure_ascii=False)}")
    assert isinstance(single, dict) and set(single) == {"entities"}, single
    check_entities(SENTENCE, single["entities"])

    assert set(instances) == {"predictions"} and len(instances["predictions"]) == len(TEXTS), instances
    assert len(lines) == len(TEXTS), lines
    for text, from_instances, from_lines in zip(TEXTS, instances["predictions"], lines, strict=True):
        check_entities(text, from_instances["entities"])
        check_entities(text, from_lines["entities"])

    expected = reference_entities(reference_process, reference_output)
    print("albert-ner predict on the host, same model.tar.gz:\n  "
          + "\n  ".join(json.dumps(entities, ensure_ascii=False) for entities in expected))
    assert_same_entities([single["entities"]], expected[:1])
    assert_same_entities([item["entities"] for item in instances["predictions"]], expected)
    assert_same_entities([item["entities"] for item in lines], expected)


def test_transformer_local_mode_batch_transform(local_training, serving_session, deployment, tmp_path):
    """A JSON Lines file through `estimator.transformer(...).transform(...)`: the container is served with
    SAGEMAKER_BATCH=true, asked for /execution-parameters, fed mini-batches of lines and stopped."""
    source = tmp_path / "input" / "texts.jsonl"
    source.parent.mkdir()
    source.write_text("".join(json.dumps({"text": text}, ensure_ascii=False) + "\n" for text in TEXTS),
                      encoding="utf-8")
    output = tmp_path / "output"
    transformer = deployment.model.transformer(
        instance_count=1, instance_type="local", strategy="MultiRecord", assemble_with="Line",
        accept="application/jsonlines", output_path=f"file://{output}")
    try:
        with timed("local mode batch transform (serve, /execution-parameters, JSON Lines, stop)"):
            # Local mode runs the whole job inside transform(); wait=True would only add a 5 s poll.
            transformer.transform(f"file://{source.parent}", content_type="application/jsonlines",
                                  split_type="Line", wait=False)
        status = serving_session.describe_transform_job(transformer.latest_transform_job.name)["TransformJobStatus"]
    finally:
        left = running_containers(deployment.image)
        if left:
            subprocess.run(["docker", "rm", "-f", *left], capture_output=True)
        transformer.delete_model()
    assert not left, f"containers still running after the transform job: {left}"
    assert status == "Completed", status

    produced = output / "texts.jsonl.out"
    assert produced.is_file(), f"no {produced.name}; output holds {sorted(p.name for p in output.rglob('*'))}"
    # Local mode appends a newline after each mini-batch's response (AssembleWith=Line), which already
    # ends with one: blank lines separate the mini-batches.
    records = [json.loads(line) for line in produced.read_text(encoding="utf-8").splitlines() if line.strip()]
    print(f"{produced.name}:\n  " + "\n  ".join(json.dumps(record, ensure_ascii=False) for record in records))
    assert len(records) == len(TEXTS), records
    for text, record in zip(TEXTS, records, strict=True):
        assert set(record) == {"entities"}, record
        check_entities(text, record["entities"])
