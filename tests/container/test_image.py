"""The image as SageMaker runs it: `docker run --network none -v DIR:/opt/ml IMAGE train`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lock_files import LOCKS, canonical, versions

from .docker_harness import timed
from .sagemaker_layout import MODEL_ARTIFACTS

pytestmark = pytest.mark.docker


def docker_run(image: str, opt_ml: Path, *command: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "run", "--rm", "--network", "none", "-v", f"{opt_ml}:/opt/ml", image, *command],
                          capture_output=True, text=True, timeout=timeout)


# Prints what the image's Python has installed and the environment its markers see (pip's own copy of
# packaging, which every venv has).
INSTALLED_PROBE = (
    "import json, importlib.metadata as m; from pip._vendor.packaging.markers import default_environment; "
    "print(json.dumps({'installed': {d.metadata['Name']: d.version for d in m.distributions()}, "
    "'environment': default_environment()}))"
)


def assert_installed_as_locked(image: str, lock: str) -> None:
    """The image holds exactly the lock's packages at the lock's versions (for the image's own Python and
    platform), besides pip and albert-ner itself: the build installed from the lock and nothing else."""
    probe = subprocess.run(["docker", "run", "--rm", "--network", "none", image, "python3", "-c", INSTALLED_PROBE],
                           capture_output=True, text=True, timeout=300)
    assert probe.returncode == 0, probe.stderr
    facts = json.loads(probe.stdout)
    installed = {canonical(name): version for name, version in facts["installed"].items()}
    assert installed.pop("albert-ner") and installed.pop("pip")
    assert installed == versions(LOCKS / lock, facts["environment"])


def test_train_writes_the_model_and_prints_metric_lines(image, opt_ml):
    with timed("docker run IMAGE train (tiny config, sample corpus)"):
        result = docker_run(image, opt_ml, "train")
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-5000:]
    model = opt_ml / "model"
    listing = sorted(p.relative_to(opt_ml).as_posix() for p in opt_ml.rglob("*") if p.is_file())
    print("artifacts:\n  " + "\n  ".join(listing))
    for name in MODEL_ARTIFACTS:
        assert (model / name).is_file(), f"model/{name} missing; found {listing}"
    assert "val_f1=" in result.stdout, "metric lines go to stdout, where SageMaker's regexes read them"
    metric_lines = [line for line in result.stdout.splitlines() if "val_f1=" in line]
    print("metric lines:\n  " + "\n  ".join(metric_lines))
    assert (opt_ml / "output" / "data" / "training.log").is_file()
    assert not (opt_ml / "output" / "failure").exists()
    report = json.loads((model / "validation_report.json").read_text())
    assert report, "validation_report.json is empty"


def test_bad_hyperparameter_fails_with_a_readable_failure_file(image, opt_ml):
    config = opt_ml / "input" / "config" / "hyperparameters.json"
    hyperparameters = json.loads(config.read_text())
    hyperparameters["lerning_rate"] = "1e-3"
    config.write_text(json.dumps(hyperparameters))
    with timed("docker run IMAGE train (misspelt hyperparameter)"):
        result = docker_run(image, opt_ml, "train")
    assert result.returncode != 0
    failure = opt_ml / "output" / "failure"
    assert failure.is_file(), result.stdout[-3000:] + result.stderr[-3000:]
    reason = failure.read_text(encoding="utf-8")
    print("failure file starts:", reason.splitlines()[0])
    assert "lerning_rate" in reason[:1024], "SageMaker shows only the first 1,024 characters as FailureReason"
    assert not (opt_ml / "model" / "model.weights.h5").exists()


def test_no_argument_trains_too(image, opt_ml):
    """SageMaker SDK v3 local mode starts the image with no command: CMD ["train"] must take it."""
    with timed("docker run IMAGE (no argument)"):
        result = docker_run(image, opt_ml)
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    assert (opt_ml / "model" / "model.weights.h5").is_file()
    assert "val_f1=" in result.stdout


def test_image_has_what_sagemaker_and_debugging_need(image, tmp_path):
    facts = json.loads(subprocess.run(["docker", "image", "inspect", image], capture_output=True, text=True,
                                      check=True).stdout)[0]["Config"]
    assert facts["Cmd"] == ["train"]
    assert not facts.get("Entrypoint")
    assert facts.get("User", "") in ("", "root", "0")
    environment = dict(item.split("=", 1) for item in facts["Env"])
    assert environment["PYTHONUNBUFFERED"] == "1"
    assert environment["CUDA_CACHE_PATH"] and int(environment["CUDA_CACHE_MAXSIZE"]) > 0
    probe = (
        "set -e; train=$(command -v train); echo train=$train; "
        "test -x $train; head -c 2 $train | grep -q '#!'; ! grep -q $'\\r' $train; "
        "case $train in /opt/ml/*) exit 3;; esac; "
        "ps -p $$ -o comm= >/dev/null; echo uid=$(id -u); "
        "python3 -c 'import sys, albert_ner, tensorflow as tf; assert sys.version_info >= (3, 11); "
        "print(\"tensorflow\", tf.__version__)'"
    )
    result = subprocess.run(["docker", "run", "--rm", "--network", "none", image, "bash", "-c", probe],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "uid=0" in result.stdout
    assert "tensorflow 2.21." in result.stdout


def test_the_image_installs_the_lock_and_nothing_else(image):
    assert_installed_as_locked(image, "train-cpu.txt")
