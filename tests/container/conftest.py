"""Fixtures for the tests that drive the real image with a real Docker engine.

`docker_engine` makes sure a daemon answers (installing and starting one on a root Debian machine, as CI
is) and skips, with the reason, only where Docker truly cannot be had. `image` builds container/Dockerfile
once per session, or reuses the image built from an identical tree. Skip them all with `-m "not docker"`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from . import docker_harness
from .docker_harness import TIMINGS, DockerEngine, DockerUnavailable
from .sagemaker_layout import TINY_HYPERPARAMETERS, write_channels


def pytest_configure(config):
    config.addinivalue_line("markers", "docker: needs a Docker engine (installed and started when missing)")


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.section("container stage timings")
        for stage, seconds in TIMINGS:
            terminalreporter.write_line(f"{seconds:8.1f} s  {stage}")
        terminalreporter.write_line(f"{sum(s for _, s in TIMINGS):8.1f} s  in all")


@pytest.fixture(scope="package")
def docker_engine():
    engine = DockerEngine()
    try:
        engine.start()
    except DockerUnavailable as reason:
        pytest.skip(f"no Docker engine: {reason}")
    yield engine
    engine.stop()


@pytest.fixture(scope="package")
def base_image(docker_engine) -> str:
    return docker_harness.base_image()


@pytest.fixture(scope="package")
def image(base_image) -> str:
    """The real container/Dockerfile built with CPU TensorFlow on the test base image."""
    return docker_harness.build_image(base_image, tf_variant="cpu")


@pytest.fixture(scope="package")
def onnx_image(base_image) -> str:
    """The real container/Dockerfile.onnx: the serving image without TensorFlow."""
    return docker_harness.build_onnx_image(base_image)


@pytest.fixture
def opt_ml(tmp_path) -> Path:
    """A fresh /opt/ml tree as SageMaker lays it out, with the tiny hyperparameters."""
    root = tmp_path / "ml"
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(TINY_HYPERPARAMETERS))
    (config / "resourceconfig.json").write_text(json.dumps(
        {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}))
    write_channels(root / "input" / "data")
    return root
