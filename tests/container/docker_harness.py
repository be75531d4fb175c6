"""A real Docker engine and the real image for the container tests, from nothing if need be.

On a developer machine with Docker this only builds the image. On CI (root, Debian, no Docker, no image
registry reachable) it installs Debian's docker.io, starts dockerd with the storage and network settings
that work in an unprivileged sandbox, builds a Debian bookworm base image with debootstrap (its python3 is
3.11), and builds container/Dockerfile on it with ``--network host`` (PyPI and Debian are reached only
through the host's network). Images are reused while their inputs are unchanged, so reruns are fast.

Every stage's wall time goes into ``TIMINGS`` for the end-of-session summary.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "container" / "Dockerfile"
ONNX_DOCKERFILE = REPO / "container" / "Dockerfile.onnx"


def dockerfile_default(argument: str, dockerfile: Path = DOCKERFILE) -> str:
    """The default a Dockerfile gives a build argument (its ``ARG NAME=VALUE`` line), so the tests use what
    the Dockerfile says rather than a copy of it."""
    match = re.search(rf"^ARG {argument}=(\S+)$", dockerfile.read_text(encoding="utf-8"), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"{dockerfile}: no 'ARG {argument}=...' line")
    return match.group(1)


DEFAULT_BASE_IMAGE = dockerfile_default("BASE_IMAGE")
LOCAL_BASE_IMAGE = "albert-ner-test/debian-python:bookworm-1"
IMAGE_REPOSITORY = "albert-ner-test"
ONNX_IMAGE_REPOSITORY = "albert-ner-test-onnx"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# What the image is built from (container/Dockerfile's COPY lines and .dockerignore).
CONTEXT_PATHS = ("pyproject.toml", "README.md", ".dockerignore", "container/Dockerfile",
                 "container/bake_pretrained.py", "container/ner", "container/pretrained",
                 "container/Dockerfile.onnx", "container/requirements")
# overlay2 where the kernel lets this sandbox mount overlays (much faster), else vfs, which works anywhere
# but copies every layer in full. $ALBERT_NER_DOCKER_STORAGE_DRIVER forces one.
STORAGE_DRIVERS = ("overlay2", "vfs")
DOCKERD_FLAGS = ("--iptables=false", "--bridge=none")

TIMINGS: list[tuple[str, float]] = []


class DockerUnavailable(Exception):
    """Docker cannot be had on this machine (not root, no apt): the container tests skip."""


@contextmanager
def timed(stage: str):
    started = time.monotonic()
    try:
        yield
    finally:
        elapsed = time.monotonic() - started
        TIMINGS.append((stage, elapsed))
        print(f"[container] {stage}: {elapsed:.1f} s", flush=True)


def run(command: list[str], timeout: float = 1800, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Run a command, capturing its output; on failure raise with the command's own words."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {result.returncode}:\n"
                           f"{result.stdout[-6000:]}\n{result.stderr[-6000:]}")
    return result


def daemon_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except subprocess.TimeoutExpired:
        return False


class DockerEngine:
    """A Docker daemon that answers; stops the one it started, and only that one."""

    def __init__(self) -> None:
        self.started_pid: int | None = None
        self.log_path: Path | None = None

    def start(self) -> None:
        if daemon_answers():
            return
        missing = [tool for tool in ("docker", "dockerd", "debootstrap", "docker-compose") if not shutil.which(tool)]
        if missing:
            self._apt_install(missing)
        if daemon_answers():
            return
        if os.geteuid() != 0:
            raise DockerUnavailable("no Docker daemon answers and starting dockerd needs root")
        forced = os.environ.get("ALBERT_NER_DOCKER_STORAGE_DRIVER")
        failures = []
        for driver in (forced,) if forced else STORAGE_DRIVERS:
            with timed(f"start dockerd --storage-driver={driver}"):
                failure = self._start_dockerd(driver)
            if failure is None:
                return
            failures.append(f"--storage-driver={driver}: {failure}")
        raise RuntimeError("dockerd did not come up:\n" + "\n".join(failures))

    def _start_dockerd(self, driver: str) -> str | None:
        """Start dockerd; None once it answers, else the tail of its log."""
        self.log_path = Path(tempfile.gettempdir()) / "albert-ner-dockerd.log"
        with open(self.log_path, "ab") as log:
            process = subprocess.Popen(["dockerd", f"--storage-driver={driver}", *DOCKERD_FLAGS], stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self.started_pid = process.pid
        deadline = time.monotonic() + 90
        while not daemon_answers():
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                return f"exit {process.poll()}: " + self.log_path.read_text(errors="replace")[-1500:]
            time.sleep(1)
        return None

    def stop(self) -> None:
        if self.started_pid is None:
            return
        try:
            os.kill(self.started_pid, signal.SIGTERM)
            for _ in range(60):
                os.kill(self.started_pid, 0)
                time.sleep(0.5)
                try:
                    if os.waitpid(self.started_pid, os.WNOHANG)[0]:
                        break
                except ChildProcessError:
                    break
        except ProcessLookupError:
            pass
        self.started_pid = None

    @staticmethod
    def _apt_install(missing: list[str]) -> None:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            raise DockerUnavailable(f"{', '.join(missing)} missing and cannot be installed here "
                                    "(needs root and apt-get)")
        packages = {"docker": "docker.io", "dockerd": "docker.io", "debootstrap": "debootstrap",
                    "docker-compose": "docker-compose"}
        wanted = sorted({packages[tool] for tool in missing})
        with timed(f"apt-get install {' '.join(wanted)}"):
            environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            run(["apt-get", "update", "-q"], env=environment, timeout=900)
            run(["apt-get", "install", "-y", "-q", *wanted], env=environment, timeout=1200)


def image_exists(reference: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", reference], capture_output=True).returncode == 0


def image_id(reference: str) -> str:
    return run(["docker", "image", "inspect", "--format", "{{.Id}}", reference]).stdout.strip()


def base_image() -> str:
    """BASE_IMAGE for the test build: $ALBERT_NER_TEST_BASE_IMAGE, the Dockerfile's default if it can be
    had, else a Debian bookworm image made here with debootstrap."""
    chosen = os.environ.get("ALBERT_NER_TEST_BASE_IMAGE")
    if chosen:
        return chosen
    if image_exists(DEFAULT_BASE_IMAGE):
        return DEFAULT_BASE_IMAGE
    if image_exists(LOCAL_BASE_IMAGE):
        return LOCAL_BASE_IMAGE
    if run(["docker", "pull", DEFAULT_BASE_IMAGE], check=False, timeout=600).returncode == 0:
        return DEFAULT_BASE_IMAGE
    with timed("debootstrap base image (bookworm, python3 3.11)"):
        _debootstrap_base_image()
    return LOCAL_BASE_IMAGE


def debian_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The Debian archive this machine's apt uses (the entry serving the plain ``bookworm`` suite), so that
    the image is built from the same mirror the machine is allowed to reach, whatever its host name."""
    for path in sorted(apt_dir.glob("sources.list.d/*.sources")):
        for stanza in path.read_text(encoding="utf-8").split("\n\n"):
            fields = dict(line.split(":", 1) for line in stanza.splitlines()
                          if ":" in line and not line.startswith(("#", " ")))
            fields = {key.strip(): value.split() for key, value in fields.items()}
            if "deb" in fields.get("Types", []) and "bookworm" in fields.get("Suites", []) and fields.get("URIs"):
                return fields["URIs"][0]
    one_line = [apt_dir / "sources.list", *sorted(apt_dir.glob("sources.list.d/*.list"))]
    for path in one_line:
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            words = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()  # drop [arch=... signed-by=...]
            if len(words) >= 3 and words[0] == "deb" and words[2] == "bookworm":
                return words[1]
    raise RuntimeError(f"no apt source for Debian bookworm under {apt_dir}: cannot choose a mirror for debootstrap")


def _debootstrap_base_image() -> None:
    if shutil.which("debootstrap") is None:
        DockerEngine._apt_install(["debootstrap"])
    with tempfile.TemporaryDirectory(prefix="albert-ner-rootfs-") as scratch:
        rootfs = Path(scratch) / "rootfs"
        run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates,procps",
             "bookworm", str(rootfs), debian_mirror()], timeout=1800)
        # HTTPS leaves this machine through an intercepting proxy: the image must trust what the host
        # trusts. Copied after ca-certificates is installed, so no package script rewrites it.
        if HOST_CA_BUNDLE.exists():
            shutil.copyfile(HOST_CA_BUNDLE, rootfs / "etc/ssl/certs/ca-certificates.crt")
            shutil.copyfile(HOST_CA_BUNDLE, rootfs / "etc/ssl/host-ca-bundle.crt")
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / cache).glob("*"):
                if entry.is_file():
                    entry.unlink()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            ["docker", "import",
             "-c", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "-c", "ENV PIP_CERT=/etc/ssl/host-ca-bundle.crt",
             "-c", "ENV SSL_CERT_FILE=/etc/ssl/host-ca-bundle.crt",
             "-c", 'CMD ["bash"]', "-", LOCAL_BASE_IMAGE],
            stdin=tar.stdout, capture_output=True, text=True, timeout=900)
        tar.stdout.close()
        tar.wait()
        if imported.returncode != 0 or tar.returncode != 0:
            raise RuntimeError(f"docker import failed: {imported.stderr}")


def context_digest(*extra: str) -> str:
    """A digest of everything the image is built from, so an unchanged tree reuses its image."""
    digest = hashlib.sha256()
    for value in extra:
        digest.update(value.encode() + b"\0")
    for name in CONTEXT_PATHS:
        root = REPO / name
        files = [root] if root.is_file() else sorted(root.rglob("*")) if root.is_dir() else []
        for path in files:
            relative = path.relative_to(REPO).as_posix()
            if not path.is_file() or "__pycache__" in relative or ".egg-info" in relative:
                continue
            digest.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
            digest.update(b"x" if os.access(path, os.X_OK) else b"-")
    return digest.hexdigest()[:16]


def build_image(base: str, tf_variant: str = "cpu") -> str:
    """Build container/Dockerfile (CPU TensorFlow by default: a smaller download than the CUDA wheels)."""
    return _build(DOCKERFILE, IMAGE_REPOSITORY, base, {"TF_VARIANT": tf_variant},
                  f"docker build (TF_VARIANT={tf_variant}, base {base})")


def build_onnx_image(base: str) -> str:
    """Build container/Dockerfile.onnx, the serving image without TensorFlow."""
    return _build(ONNX_DOCKERFILE, ONNX_IMAGE_REPOSITORY, base, {}, f"docker build -f Dockerfile.onnx (base {base})")


def _build(dockerfile: Path, repository: str, base: str, arguments: dict[str, str], stage: str) -> str:
    tag = f"{repository}:{context_digest(image_id(base), dockerfile.name, *arguments.values())}"
    if image_exists(tag):
        print(f"[container] reusing {tag}: Dockerfile and build context unchanged", flush=True)
        return tag
    with timed(stage):
        flags = [flag for name, value in {"BASE_IMAGE": base, **arguments}.items()
                 for flag in ("--build-arg", f"{name}={value}")]
        result = run(["docker", "build", "--network", "host", "-f", str(dockerfile), *flags, "-t", tag, str(REPO)],
                     timeout=3000, check=False, env={**os.environ, "DOCKER_BUILDKIT": "0"})
        if result.returncode != 0:
            raise RuntimeError(f"docker build failed ({result.returncode}):\n{result.stdout[-8000:]}\n"
                               f"{result.stderr[-4000:]}")
    _remove_stale_images(repository, keep=tag)
    return tag


def _remove_stale_images(repository: str, keep: str) -> None:
    """Older test images would fill the disk (vfs copies every layer in full)."""
    listed = run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", repository], check=False)
    stale = [name for name in listed.stdout.split() if name != keep]
    if stale:
        run(["docker", "rmi", *stale], check=False)
    run(["docker", "image", "prune", "-f"], check=False)
