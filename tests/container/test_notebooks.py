"""The notebooks, executed for real up to the first cell that needs AWS (cells tagged `aws`).

The bring-your-own notebook builds the image with build_and_push.sh --no-push (on the test base image,
CPU TensorFlow: every layer is already cached by the `image` fixture) and trains it in SageMaker local mode.
The script-mode notebook runs the entry point as the framework container would; it needs no Docker. The
active-learning notebook trains the tiny model locally and selects sentences for Ground Truth; no Docker.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .docker_harness import timed
from .sagemaker_layout import REPO

NOTEBOOKS = REPO / "notebooks"


def execute_until_aws(name: str, tmp_path: Path, parameters: str = "") -> object:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient", reason="pip install nbclient ipykernel (in the [test] extras)")
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    tags = [cell.metadata.get("tags", []) for cell in notebook.cells]
    first_aws = next(i for i, cell_tags in enumerate(tags) if "aws" in cell_tags)
    notebook.cells = notebook.cells[:first_aws]
    if parameters:
        cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
        cell.source += "\n# injected by the test\n" + parameters
    client = nbclient.NotebookClient(notebook, timeout=1800, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    try:
        client.execute()
    finally:
        nbformat.write(notebook, tmp_path / name)
        print(f"executed notebook written to {tmp_path / name}")
    return notebook


def outputs_of(notebook) -> str:
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", "") or str(output.get("data", {}).get("text/plain", "")))
    return "\n".join(texts)


@pytest.mark.docker
def test_bring_your_own_notebook_runs_up_to_aws(image, base_image, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_BUILDKIT", "0")  # the legacy builder shares the `image` fixture's layer cache
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    config = tmp_path / "sagemaker-config.yaml"
    config.write_text("SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n")
    monkeypatch.setenv("SAGEMAKER_USER_CONFIG_OVERRIDE", str(config))
    image_name = "albert-ner-notebook-test"
    parameters = (f'IMAGE_NAME = "{image_name}"\n'
                  f'BUILD_OPTIONS = ["--cpu", "--network", "host", "--build-arg", "BASE_IMAGE={base_image}"]\n')
    try:
        with timed("notebook tensorflow_bring_your_own.ipynb up to the aws cells (build + local mode)"):
            notebook = execute_until_aws("tensorflow_bring_your_own.ipynb", tmp_path, parameters)
    finally:
        subprocess.run(["docker", "rmi", f"{image_name}:latest"], capture_output=True)
    text = outputs_of(notebook)
    assert "model.tar.gz holds:" in text and "model.weights.h5" in text
    assert "val_f1=" in text, "local mode shows the container's log, metric lines included"


def test_script_mode_notebook_runs_up_to_aws(tmp_path):
    with timed("notebook tensorflow_script_mode_quickstart.ipynb up to the aws cells"):
        notebook = execute_until_aws("tensorflow_script_mode_quickstart.ipynb", tmp_path)
    text = outputs_of(notebook)
    assert "SM_MODEL_DIR holds:" in text and "model.weights.h5" in text
    assert "val_f1=" in text


def test_active_learning_notebook_runs_up_to_aws(tmp_path):
    """Trains the tiny model, then `albert-ner select` writes the Ground Truth manifest with pre-annotations."""
    with timed("notebook active_learning_ground_truth.ipynb up to the aws cells"):
        notebook = execute_until_aws("active_learning_ground_truth.ipynb", tmp_path)
    text = outputs_of(notebook)
    assert "val_f1=" in text and "selected 20 of" in text and "1 duplicate, " in text and "already labelled" in text
    assert '{"source": "欧阳娜娜随司马懿去了巴黎"' in text and '"ner-round-1": {"annotations": {"entities": [' in text


def test_notebooks_stop_at_cells_tagged_aws_and_have_them():
    nbformat = pytest.importorskip("nbformat")
    for name in ("tensorflow_bring_your_own.ipynb", "tensorflow_script_mode_quickstart.ipynb",
                 "active_learning_ground_truth.ipynb"):
        notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(notebook)
        tags = [cell.metadata.get("tags", []) for cell in notebook.cells if cell.cell_type == "code"]
        assert any("aws" in t for t in tags), f"{name}: no cell tagged aws"
        assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), \
            f"{name}: committed with outputs"
