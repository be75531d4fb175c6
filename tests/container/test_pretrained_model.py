"""The image fetching its encoder by `pretrained_model` from a fake Hugging Face Hub on the host's loopback.

The one container test with a network: `--network host`, so that the image's huggingface_hub reaches the
fake Hub (tests/fake_hub.py) through HF_ENDPOINT; a second run with HF_HUB_OFFLINE=1 and the same HF_HOME
(a directory in the mounted tree) trains from the cache and makes no request.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from fake_hub import FakeHub, repository_from_directory, save_tiny_albert

from .docker_harness import timed

pytestmark = pytest.mark.docker

REPO_ID = "voidful/albert_chinese_tiny"


def docker_run(image: str, opt_ml: Path, environ: dict[str, str]) -> subprocess.CompletedProcess:
    settings = [argument for key, value in environ.items() for argument in ("-e", f"{key}={value}")]
    return subprocess.run(["docker", "run", "--rm", "--network", "host", *settings, "-v", f"{opt_ml}:/opt/ml",
                           image, "train"], capture_output=True, text=True, timeout=900)


def test_pretrained_model_from_the_hub_then_offline_from_the_cache(image, opt_ml, tmp_path):
    hub = FakeHub({REPO_ID: repository_from_directory(save_tiny_albert(tmp_path / "model", "---\nlicense: "
                                                                                            "apache-2.0\n---\n"))})
    endpoint = hub.start()
    try:
        hyperparameters_path = opt_ml / "input" / "config" / "hyperparameters.json"
        hyperparameters = json.loads(hyperparameters_path.read_text())
        for key in ("encoder_size", "num_hidden_layers"):
            hyperparameters.pop(key, None)
        hyperparameters.update({"pretrained_model": REPO_ID, "max_steps": "4", "max_seq_length": "32"})
        hyperparameters_path.write_text(json.dumps(hyperparameters))
        environ = {"HF_ENDPOINT": endpoint, "HF_HOME": "/opt/ml/hf-home"}

        with timed("docker run IMAGE train (pretrained_model from the fake Hub)"):
            result = docker_run(image, opt_ml, environ)
        assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
        assert "loaded 23 encoder tensors" in result.stdout
        provenance = json.loads((opt_ml / "model" / "model_config.json").read_text())["pretrained"]
        assert provenance["repository"] == REPO_ID and provenance["commit"] == hub.repositories[REPO_ID].commit
        assert provenance["license"] == "apache-2.0" and len(provenance["weights_sha256"]) == 64

        hub.requests.clear()
        with timed("docker run IMAGE train (HF_HUB_OFFLINE=1, warm cache)"):
            offline = docker_run(image, opt_ml, {**environ, "HF_HUB_OFFLINE": "1"})
        assert offline.returncode == 0, (offline.stdout + offline.stderr)[-5000:]
        assert hub.requests == []
    finally:
        hub.stop()
