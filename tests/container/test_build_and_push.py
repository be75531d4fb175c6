"""build_and_push.sh run for real against stand-in `aws` and `docker` programs that record their calls.

No AWS account and no Docker engine are needed: the stand-ins answer as the real CLIs do and write each
invocation to a log, so the tests pin what the script asks of AWS and Docker, in what order, and what it
tells a user whose tools are missing or not logged in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "build_and_push.sh"

FAKE_AWS = r"""#!/usr/bin/env bash
echo "aws $*" >> "$CALLS"
case "$1 $2" in
  "sts get-caller-identity") [ -n "${FAKE_NOT_LOGGED_IN:-}" ] && { echo "Unable to locate credentials" >&2; exit 255; }; echo 123456789012 ;;
  "configure get") [ -n "${FAKE_CONFIGURED_REGION:-}" ] && echo "$FAKE_CONFIGURED_REGION" || exit 1 ;;
  "ecr describe-repositories") [ -n "${FAKE_REPO_EXISTS:-}" ] || { echo "RepositoryNotFoundException" >&2; exit 254; } ;;
  "ecr create-repository") echo '{}' ;;
  "ecr get-login-password") echo secret-token ;;
  *) echo "fake aws: unexpected $*" >&2; exit 2 ;;
esac
"""

FAKE_DOCKER = r"""#!/usr/bin/env bash
if [ "$1" = login ]; then echo "docker $* stdin=$(cat)" >> "$CALLS"; else echo "docker $*" >> "$CALLS"; fi
case "$1" in
  info) [ -n "${FAKE_DOCKER_DOWN:-}" ] && { echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2; exit 1; }; exit 0 ;;
  build|tag|login|push) exit 0 ;;
  *) echo "fake docker: unexpected $*" >&2; exit 2 ;;
esac
"""


@pytest.fixture
def tools(tmp_path):
    """A PATH holding only the stand-ins and the basic system tools the script uses."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("aws", FAKE_AWS), ("docker", FAKE_DOCKER)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    # Only the basic tools the script needs, so that a real docker or aws on this machine stays out of sight.
    system_dir = tmp_path / "system"
    system_dir.mkdir()
    for tool in ("bash", "env", "dirname", "sed", "cat"):
        (system_dir / tool).symlink_to(shutil.which(tool))
    calls = tmp_path / "calls.log"
    environment = {"PATH": f"{bin_dir}:{system_dir}", "CALLS": str(calls), "HOME": str(tmp_path)}
    return bin_dir, calls, environment


def run_script(environment, *args):
    return subprocess.run([shutil.which("bash"), str(SCRIPT), *args], capture_output=True, text=True, env=environment,
                          timeout=60)


def calls_of(calls: Path) -> list[str]:
    return calls.read_text().splitlines() if calls.exists() else []


def test_push_creates_the_repository_logs_in_builds_tags_and_pushes(tools):
    _, calls, environment = tools
    result = run_script({**environment, "AWS_REGION": "eu-west-1"}, "--tag", "v1", "my-ner")
    assert result.returncode == 0, result.stderr
    uri = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-ner:v1"
    assert result.stdout.strip().splitlines()[-1] == uri
    log = calls_of(calls)
    assert "aws sts get-caller-identity --query Account --output text" in log
    assert "aws ecr create-repository --region eu-west-1 --repository-name my-ner" in log
    login = next(line for line in log if line.startswith("docker login"))
    assert "--password-stdin 123456789012.dkr.ecr.eu-west-1.amazonaws.com" in login and "stdin=secret-token" in login
    build = next(line for line in log if line.startswith("docker build"))
    assert f"-f {REPO}/container/Dockerfile" in build and build.endswith(f"-t my-ner:v1 {REPO}")
    assert f"docker tag my-ner:v1 {uri}" in log
    assert log[-1] == f"docker push {uri}"


def test_existing_repository_is_not_created_again(tools):
    _, calls, environment = tools
    result = run_script({**environment, "FAKE_REPO_EXISTS": "1"}, "--region", "us-east-1")
    assert result.returncode == 0, result.stderr
    assert not any("create-repository" in line for line in calls_of(calls))
    assert result.stdout.strip().endswith("123456789012.dkr.ecr.us-east-1.amazonaws.com/albert-ner:latest")


def test_china_regions_use_the_amazonaws_com_cn_registry(tools):
    _, _, environment = tools
    result = run_script({**environment, "FAKE_REPO_EXISTS": "1"}, "--region", "cn-north-1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/albert-ner:latest")


def test_region_falls_back_to_aws_configure(tools):
    _, _, environment = tools
    result = run_script({**environment, "FAKE_CONFIGURED_REGION": "ap-southeast-1", "FAKE_REPO_EXISTS": "1"})
    assert result.returncode == 0, result.stderr
    assert ".dkr.ecr.ap-southeast-1.amazonaws.com/albert-ner:latest" in result.stdout


def test_no_push_builds_and_tags_without_login_or_push(tools):
    _, calls, environment = tools
    result = run_script({**environment, "AWS_REGION": "eu-west-1"}, "--no-push", "--cpu")
    assert result.returncode == 0, result.stderr
    log = calls_of(calls)
    assert not any(line.startswith(("docker login", "docker push", "aws ecr")) for line in log)
    build = next(line for line in log if line.startswith("docker build"))
    assert "--build-arg TF_VARIANT=cpu" in build
    assert "docker tag albert-ner:latest 123456789012.dkr.ecr.eu-west-1.amazonaws.com/albert-ner:latest" in log


def test_no_push_works_without_aws_at_all(tools):
    bin_dir, calls, environment = tools
    (bin_dir / "aws").unlink()
    result = run_script(environment, "--no-push")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "albert-ner:latest"
    assert "tagged albert-ner:latest only" in result.stderr


def test_missing_aws_says_so(tools):
    bin_dir, _, environment = tools
    (bin_dir / "aws").unlink()
    result = run_script({**environment, "AWS_REGION": "eu-west-1"})
    assert result.returncode != 0
    assert "aws not found on PATH" in result.stderr and "--no-push" in result.stderr


def test_missing_docker_says_so(tools):
    bin_dir, _, environment = tools
    (bin_dir / "docker").unlink()
    result = run_script({**environment, "AWS_REGION": "eu-west-1"})
    assert result.returncode != 0
    assert "docker not found on PATH" in result.stderr


def test_docker_daemon_down_says_so(tools):
    _, _, environment = tools
    result = run_script({**environment, "AWS_REGION": "eu-west-1", "FAKE_DOCKER_DOWN": "1"})
    assert result.returncode != 0
    assert "Docker daemon does not answer" in result.stderr and "Is the docker daemon running?" in result.stderr


def test_not_logged_in_to_aws_says_so(tools):
    _, calls, environment = tools
    result = run_script({**environment, "AWS_REGION": "eu-west-1", "FAKE_NOT_LOGGED_IN": "1"})
    assert result.returncode != 0
    assert "not logged in" in result.stderr and "Unable to locate credentials" in result.stderr
    assert not any(line.startswith("docker build") for line in calls_of(calls))


def test_no_region_says_how_to_give_one(tools):
    _, _, environment = tools
    result = run_script(environment)
    assert result.returncode != 0
    assert "no AWS region" in result.stderr and "--region" in result.stderr


def test_script_is_executable_with_lf_endings():
    assert os.access(SCRIPT, os.X_OK)
    assert b"\r\n" not in SCRIPT.read_bytes()
