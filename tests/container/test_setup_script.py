"""utils/setup.sh against stand-in docker, compose, nvidia-smi and python programs.

It must say what is missing and the command that fixes it, exit non-zero until local mode can run, and
change nothing on a second run.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from .sagemaker_layout import REPO

SCRIPT = REPO / "utils" / "setup.sh"

DOCKER = r"""#!/usr/bin/env bash
case "$1" in
  info) [ -n "${FAKE_DOCKER_DOWN:-}" ] && { echo "Cannot connect to the Docker daemon" >&2; exit 1; }
        [ "$2" = --format ] && { [ -n "${FAKE_NVIDIA_RUNTIME:-}" ] && echo '{"nvidia":{},"runc":{}}' || echo '{"runc":{}}'; }; exit 0 ;;
  version) echo 27.3.1 ;;
  compose) [ -n "${FAKE_COMPOSE:-}" ] && echo "Docker Compose version v2.29.7" || { echo "docker: 'compose' is not a docker command." >&2; exit 1; } ;;
esac
"""
NVIDIA_SMI = "#!/usr/bin/env bash\necho 'GPU 0: NVIDIA A10G (UUID: GPU-0)'\n"
PYTHON = "#!/usr/bin/env bash\n[ -n \"${FAKE_SDK:-}\" ] && echo 2.257.7 || exit 1\n"


@pytest.fixture
def machine(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "env", "sed", "head", "wc", "id"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    (bin_dir / "python3").write_text(PYTHON)
    (bin_dir / "python3").chmod(0o755)

    def with_tools(*names: str) -> dict[str, str]:
        for name, text in (("docker", DOCKER), ("nvidia-smi", NVIDIA_SMI)):
            if name in names:
                (bin_dir / name).write_text(text)
                (bin_dir / name).chmod(0o755)
        return {"PATH": str(bin_dir), "HOME": str(tmp_path)}

    return with_tools


def setup(environment, *args):
    return subprocess.run([shutil.which("bash"), str(SCRIPT), *args], capture_output=True, text=True,
                          env=environment, timeout=60)


def test_ready_machine_passes_and_a_second_run_says_the_same(machine):
    environment = {**machine("docker"), "FAKE_COMPOSE": "1", "FAKE_SDK": "1"}
    first, second = setup(environment), setup(environment)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Ready for SageMaker local mode." in first.stdout
    assert "Docker Compose version v2" in first.stdout and "sagemaker 2.257.7" in first.stdout
    assert first.stdout == second.stdout


def test_missing_docker_says_how_to_install_it(machine):
    result = setup({**machine(), "FAKE_SDK": "1"})
    assert result.returncode == 1
    assert "MISSING  docker: not installed" in result.stdout and "docs.docker.com/engine/install" in result.stdout


def test_daemon_down_and_no_compose_are_both_reported(machine):
    result = setup({**machine("docker"), "FAKE_DOCKER_DOWN": "1", "FAKE_SDK": "1"})
    assert result.returncode == 1
    assert "daemon does not answer" in result.stdout and "systemctl start docker" in result.stdout
    assert "MISSING  docker compose" in result.stdout and "docker-compose-plugin" in result.stdout
    assert "2 thing(s) to fix" in result.stdout


def test_gpu_without_nvidia_container_toolkit_is_reported_for_local_gpu(machine):
    result = setup({**machine("docker", "nvidia-smi"), "FAKE_COMPOSE": "1", "FAKE_SDK": "1"})
    assert result.returncode == 1
    assert "NVIDIA container toolkit: not installed" in result.stdout
    assert "nvidia-ctk runtime configure --runtime=docker" in result.stdout


def test_gpu_with_nvidia_runtime_is_ready_for_local_gpu(machine):
    result = setup({**machine("docker", "nvidia-smi"), "FAKE_COMPOSE": "1", "FAKE_SDK": "1",
                    "FAKE_NVIDIA_RUNTIME": "1"}, "--gpu")
    assert result.returncode == 0, result.stdout
    assert 'instance_type="local_gpu" works' in result.stdout


def test_missing_sdk_names_the_pip_command(machine):
    result = setup({**machine("docker"), "FAKE_COMPOSE": "1"})
    assert result.returncode == 1
    assert "pip install 'sagemaker<3'" in result.stdout
