"""container/requirements: the lock files the images install from with ``pip --require-hashes``.

Each entry is one exact version with its files' sha256; the locks satisfy what pyproject.toml asks for; the
ONNX image runs the training image's versions; and scripts/lock.sh --check, which resolves them again with uv
against PyPI, finds them current and catches a lock that is not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from conftest import REPO
from lock_files import IMAGE_ENVIRONMENT, LOCKS, canonical, read_lock, versions

LOCK_SCRIPT = REPO / "scripts" / "lock.sh"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
RUNTIME = [Requirement(text) for text in PYPROJECT["project"]["dependencies"]]
BUILD = [Requirement(text) for text in PYPROJECT["build-system"]["requires"]]
TRAIN_LOCKS = ("train-cpu.txt", "train-gpu.txt")
# What uv says when PyPI cannot be reached (the only reason the check may skip).
NETWORK_ERRORS = ("error sending request", "dns error", "Connection refused", "timed out")


@pytest.mark.parametrize("lock", ["train-cpu.txt", "train-gpu.txt", "serve-onnx.txt"])
def test_every_entry_is_one_version_with_sha256_hashes(lock: str) -> None:
    pins = read_lock(LOCKS / lock)
    assert len(pins) >= 5
    for pin in pins:
        where = f"{lock}:{pin.line} ({pin.requirement})"
        assert pin.version is not None, f"{where}: not an exact == pin"
        assert pin.hashes, f"{where}: no --hash"
        for digest in pin.hashes:
            algorithm, _, value = digest.partition(":")
            assert algorithm == "sha256" and len(value) == 64 and int(value, 16) >= 0, f"{where}: {digest}"


def _unmet(requirements: list[Requirement], pinned: dict[str, str | None], extras: set[str] = frozenset()) -> list:
    environment = {**IMAGE_ENVIRONMENT, "extra": ""}
    unmet = []
    for requirement in requirements:
        if requirement.marker is not None and not any(
                requirement.marker.evaluate({**environment, "extra": extra}) for extra in {"", *extras}):
            continue
        version = pinned.get(canonical(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            unmet.append(f"{requirement} (locked: {version})")
    return unmet


@pytest.mark.parametrize("lock", TRAIN_LOCKS)
def test_the_training_locks_satisfy_pyproject(lock: str) -> None:
    """What `pip install .` would ask for is in the lock at an allowed version, and so is setuptools, which
    the image builds the package with (--no-build-isolation)."""
    pinned = versions(LOCKS / lock)
    assert _unmet(RUNTIME + BUILD, pinned) == []
    assert pinned["jinja2"] is not None and tuple(map(int, pinned["jinja2"].split("."))) >= (3, 1, 6)


def test_the_gpu_lock_has_tensorflows_cuda_libraries() -> None:
    """TF_VARIANT=gpu installs tensorflow[and-cuda]: every requirement of that extra (read from the installed
    TensorFlow's own metadata, which is the locked release) is locked, and the CPU lock has none of them."""
    tensorflow = metadata.distribution("tensorflow")
    assert tensorflow.version == versions(LOCKS / "train-gpu.txt")["tensorflow"]
    cuda = [Requirement(text) for text in tensorflow.requires or []
            if "and-cuda" in text and Requirement(text).marker is not None]
    assert len(cuda) >= 5
    assert _unmet(cuda, versions(LOCKS / "train-gpu.txt"), extras={"and-cuda"}) == []
    cpu = versions(LOCKS / "train-cpu.txt")
    assert not {canonical(requirement.name) for requirement in cuda} & set(cpu)


def test_the_onnx_image_runs_the_training_images_versions() -> None:
    onnx = versions(LOCKS / "serve-onnx.txt")
    cpu = versions(LOCKS / "train-cpu.txt")
    wanted = [Requirement(line) for line in (LOCKS / "serve-onnx.in").read_text(encoding="utf-8").splitlines()
              if line.strip() and not line.startswith("#")]
    assert {canonical(requirement.name) for requirement in wanted} == {"onnxruntime", "numpy", "gunicorn"}
    assert _unmet(wanted + BUILD, onnx) == []
    assert "tensorflow" not in onnx
    assert {name: onnx[name] for name in onnx} == {name: cpu[name] for name in onnx}


def _lock_check(root: Path) -> subprocess.CompletedProcess:
    uv = Path(sys.executable).with_name("uv")
    assert uv.is_file(), f"{uv}: uv is in the test extra (scripts/setup.sh installs it)"
    result = subprocess.run(["bash", str(root / "scripts" / "lock.sh"), "--check"], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "UV": str(uv), "PYTHON": sys.executable})
    if result.returncode != 0 and any(error in result.stderr for error in NETWORK_ERRORS):
        pytest.skip(f"PyPI cannot be reached: {result.stderr.strip().splitlines()[-1]}")
    return result


def test_lock_check_finds_the_committed_locks_current() -> None:
    result = _lock_check(REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_lock_check_fails_on_a_pin_pyproject_excludes_or_an_edited_hash(tmp_path: Path) -> None:
    """The check would catch a lock left behind by a pyproject change, or edited by hand."""
    (tmp_path / "scripts").mkdir()
    shutil.copy2(LOCK_SCRIPT, tmp_path / "scripts")
    shutil.copy2(REPO / "pyproject.toml", tmp_path)
    shutil.copytree(LOCKS, tmp_path / "container" / "requirements")
    cpu = tmp_path / "container" / "requirements" / "train-cpu.txt"
    text = cpu.read_text(encoding="utf-8")
    assert "\njinja2==3.1.6 " in text
    cpu.write_text(text.replace("\njinja2==3.1.6 ", "\njinja2==3.1.5 "), encoding="utf-8")
    onnx = tmp_path / "container" / "requirements" / "serve-onnx.txt"
    first_hash = onnx.read_text(encoding="utf-8").index("--hash=sha256:") + len("--hash=sha256:")
    edited = onnx.read_text(encoding="utf-8")
    onnx.write_text(edited[:first_hash] + ("1" if edited[first_hash] != "1" else "2") + edited[first_hash + 1:],
                    encoding="utf-8")

    result = _lock_check(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "-jinja2==3.1.5" in result.stdout and "+jinja2==3.1.6" in result.stdout
    assert "container/requirements/serve-onnx.txt (committed)" in result.stdout
    assert "lock: the lock files above are stale" in result.stderr
    assert cpu.read_text(encoding="utf-8").count("jinja2==3.1.5") == 1, "--check wrote into the committed lock"
