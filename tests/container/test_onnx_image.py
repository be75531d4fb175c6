"""The ONNX serving image (container/Dockerfile.onnx) serves what the training image trained, without
TensorFlow: the same entities and scores as the training image's own `serve` (which also runs the ONNX
copy by default), its size against the training image's, and the cold starts (`docker run` to the first
200 from `/ping`) of both images, the training image also on TensorFlow."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import time
from pathlib import Path

import pytest

from .docker_harness import timed
from .test_image import assert_installed_as_locked, docker_run

pytestmark = pytest.mark.docker

TEXTS = ["张伟在北京的清华大学工作。", "李明昨天从上海到了香港。", ""]


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def serve(image: str, model: Path, *env: str) -> tuple[str, int, float]:
    """Start ``IMAGE serve`` on ``model``; return the container, its port and the seconds to the first 200."""
    port = free_loopback_port()
    started = time.monotonic()
    # The test engine has no bridge network (dockerd --bridge=none): the server binds loopback on the host's.
    container = subprocess.run(
        ["docker", "run", "-d", "--network", "host", "-e", f"SAGEMAKER_BIND_TO_PORT={port}",
         "-e", "ALBERT_NER_BIND_HOST=127.0.0.1", "-v", f"{model}:/opt/ml/model:ro",
         *(flag for variable in env for flag in ("-e", variable)), image, "serve"],
        capture_output=True, text=True, check=True).stdout.strip()
    deadline = started + 180
    while time.monotonic() < deadline:
        try:
            if request(port, "GET", "/ping")[0] == 200:
                return container, port, time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.05)
    logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True).stdout
    subprocess.run(["docker", "rm", "-f", container], capture_output=True)
    raise AssertionError(f"{image} never answered /ping with 200:\n{logs[-5000:]}")


def predictions(port: int) -> list[list[dict]]:
    status, body = request(port, "POST", "/invocations", json.dumps({"instances": TEXTS}).encode())
    assert status == 200, body
    return [item["entities"] for item in json.loads(body)["predictions"]]


def image_size(image: str) -> int:
    return int(subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", image], capture_output=True,
                              text=True, check=True).stdout)


def test_onnx_image_serves_the_trained_model_as_the_training_image_does(image, onnx_image, opt_ml):
    with timed("docker run IMAGE train (tiny config, for the ONNX image)"):
        trained = docker_run(image, opt_ml, "train")
    assert trained.returncode == 0, (trained.stdout + trained.stderr)[-5000:]
    model = opt_ml / "model"
    assert (model / "onnx" / "tagger.onnx").is_file()

    answers, cold_starts = {}, {}
    for name, tag, env in (("training image on TensorFlow", image, ["ALBERT_NER_RUNTIME=tensorflow"]),
                           ("training image", image, []), ("onnx image", onnx_image, [])):
        container, port, cold_starts[name] = serve(tag, model, *env)
        try:
            answers[name] = predictions(port)
            logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True)
            print(f"{name} log:\n{(logs.stdout + logs.stderr)[-1500:]}")
            assert "nginx in front" in logs.stdout + logs.stderr  # both images run nginx before gunicorn
        finally:
            subprocess.run(["docker", "rm", "-f", container], capture_output=True)
    sizes = {name: image_size(tag) for name, tag in (("training image", image), ("onnx image", onnx_image))}
    for name in sizes:
        print(f"{name}: {sizes[name] / 1e6:,.0f} MB")
    for name, seconds in cold_starts.items():
        print(f"{name}: cold start (docker run to the first /ping 200) {seconds:.1f} s")
    print(f"size ratio {sizes['onnx image'] / sizes['training image']:.3f}; cold start ratio, ONNX image to the "
          f"training image on TensorFlow {cold_starts['onnx image'] / cold_starts['training image on TensorFlow']:.2f}")

    spans = {name: [[(e["start"], e["end"], e["type"]) for e in row] for row in rows] for name, rows in answers.items()}
    assert spans["onnx image"] == spans["training image"]
    for ours, theirs in zip(answers["onnx image"], answers["training image"], strict=True):
        for entity, expected in zip(ours, theirs, strict=True):
            assert abs(entity["score"] - expected["score"]) < 1e-5
    assert sizes["onnx image"] * 3 <= sizes["training image"], sizes


def test_onnx_image_has_no_tensorflow(onnx_image):
    facts = json.loads(subprocess.run(["docker", "image", "inspect", onnx_image], capture_output=True, text=True,
                                      check=True).stdout)[0]["Config"]
    assert facts["Cmd"] == ["serve"]
    probe = subprocess.run(["docker", "run", "--rm", "--network", "none", onnx_image, "python3", "-c",
                            "import importlib.util as u; print([m for m in ('tensorflow', 'keras', 'torch', "
                            "'onnxruntime', 'gunicorn') if u.find_spec(m)])"], capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "['onnxruntime', 'gunicorn']"


def test_onnx_image_installs_its_lock_and_nothing_else(onnx_image):
    assert_installed_as_locked(onnx_image, "serve-onnx.txt")
