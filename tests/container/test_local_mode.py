"""SageMaker Python SDK v2 local mode drives the image end to end, with no AWS account.

`Estimator(image_uri=..., instance_type="local")` writes the /opt/ml tree, starts the image through
docker compose with `train`, and packs model.tar.gz, exactly as the notebook's local-mode cell does.
A dummy role ARN and a region stand in for credentials; file:// data and output keep S3 out of it.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from .sagemaker_layout import MODEL_ARTIFACTS, TINY_HYPERPARAMETERS, write_channels
from .docker_harness import timed

pytestmark = pytest.mark.docker

DUMMY_ROLE = "arn:aws:iam::111111111111:role/service-role/AmazonSageMaker-ExecutionRole-local"


@pytest.fixture
def sdk_offline(tmp_path, monkeypatch):
    """A region, fake credentials and the SDK's telemetry turned off (the network is closed)."""
    config = tmp_path / "sagemaker-config.yaml"
    config.write_text("SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n")
    monkeypatch.setenv("SAGEMAKER_USER_CONFIG_OVERRIDE", str(config))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")


def test_estimator_local_mode_trains_and_returns_model_tar_gz(image, tmp_path, sdk_offline):
    sagemaker = pytest.importorskip("sagemaker", reason="pip install 'sagemaker<3' (in the [test] extras)")
    from sagemaker.estimator import Estimator
    from sagemaker.local import LocalSession

    channels = write_channels(tmp_path / "data")
    output = tmp_path / "output"
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
    with timed(f"SageMaker SDK {sagemaker.__version__} local mode fit"):
        estimator.fit({name: f"file://{path}" for name, path in channels.items()}, wait=True, logs=True)

    model_data = estimator.model_data
    assert model_data.startswith("file://"), model_data
    archive = Path(model_data[len("file://"):])
    assert archive.is_file(), f"{archive} missing; output holds {sorted(p.name for p in output.rglob('*'))}"
    with tarfile.open(archive) as packed:
        names = {Path(name).name for name in packed.getnames()}
    print(f"{archive}: {sorted(names)}")
    for name in MODEL_ARTIFACTS:
        assert name in names, f"{name} not in model.tar.gz"
