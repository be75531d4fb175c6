#!/usr/bin/env bash
# Check (and with --install, fix what can be fixed) a machine or notebook instance for SageMaker local
# mode: Docker, the `docker compose` plugin, the NVIDIA container toolkit for instance_type="local_gpu",
# and the SageMaker Python SDK. Safe to run again and again: it changes nothing that is already right.
#
#   utils/setup.sh            report what is there and what is missing, with the command that fixes it
#   utils/setup.sh --install  also install the compose plugin and the SDK when missing (needs sudo/root)
#   utils/setup.sh --gpu      fail unless local_gpu works too
#   PYTHON=/path/to/python    the interpreter whose SageMaker SDK to check (default: python3 on PATH)
#
# Exit status 0 when local mode (and local_gpu, with --gpu) can run, 1 otherwise.
set -euo pipefail

install=false
want_gpu=false
for argument in "$@"; do
    case "$argument" in
        --install) install=true ;;
        --gpu) want_gpu=true ;;
        -h|--help) sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup.sh: unknown argument $argument (see --help)" >&2; exit 2 ;;
    esac
done

problems=0
ok() { echo "  ok       $*"; }
missing() { echo "  MISSING  $1"; shift; for hint in "$@"; do echo "           $hint"; done; problems=$((problems + 1)); }
note() { echo "  note     $*"; }

sudo_prefix=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then sudo_prefix="sudo "; fi

package_install() {
    # Install Debian/Ubuntu or Amazon Linux/RHEL packages; returns non-zero when there is no known manager.
    if command -v apt-get >/dev/null 2>&1; then
        ${sudo_prefix}apt-get update -q && ${sudo_prefix}env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
    elif command -v dnf >/dev/null 2>&1; then
        ${sudo_prefix}dnf install -y "$@"
    elif command -v yum >/dev/null 2>&1; then
        ${sudo_prefix}yum install -y "$@"
    else
        return 1
    fi
}

echo "SageMaker local mode prerequisites"

# ------------------------------------------------------------------ Docker engine
docker_ready=false
if ! command -v docker >/dev/null 2>&1; then
    missing "docker: not installed" \
        "install Docker Engine: https://docs.docker.com/engine/install/ (Debian/Ubuntu: sudo apt-get install docker.io)" \
        "SageMaker Studio: enable Docker access in the domain (DockerSettings.EnableDockerAccess) first"
elif ! docker_error=$(docker info 2>&1 >/dev/null); then
    missing "docker: the daemon does not answer (${docker_error##*$'\n'})" \
        "start it: sudo systemctl start docker" \
        "or let this user use it: sudo usermod -aG docker \"\$USER\" and log in again"
else
    docker_ready=true
    ok "docker $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?') answers"
fi

# ------------------------------------------------------------------ docker compose
if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    ok "$(docker compose version | head -n 1)"
elif command -v docker-compose >/dev/null 2>&1; then
    ok "$(docker-compose version --short 2>/dev/null | sed 's/^/docker-compose /') (standalone; the SDK accepts it)"
else
    if $install && package_install docker-compose-plugin >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
        ok "installed the docker compose plugin: $(docker compose version | head -n 1)"
    else
        missing "docker compose: neither the plugin nor docker-compose" \
            "install the plugin: sudo apt-get install docker-compose-plugin (Docker's apt repository)," \
            "sudo dnf install docker-compose-plugin, or see https://docs.docker.com/compose/install/linux/;" \
            "or rerun this script with --install"
    fi
fi

# ------------------------------------------------------------------ GPUs for local_gpu
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    ok "GPU(s): $(nvidia-smi -L | wc -l) seen by nvidia-smi"
    runtimes=""
    if $docker_ready; then runtimes=$(docker info --format '{{json .Runtimes}}' 2>/dev/null || true); fi
    if [[ "$runtimes" == *nvidia* ]]; then
        ok "NVIDIA container runtime registered with Docker: instance_type=\"local_gpu\" works"
    elif command -v nvidia-ctk >/dev/null 2>&1; then
        missing "NVIDIA container toolkit installed but not registered with Docker" \
            "sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker"
    else
        missing "NVIDIA container toolkit: not installed (needed for instance_type=\"local_gpu\")" \
            "https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html" \
            "then: sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker"
    fi
elif $want_gpu; then
    missing "GPU: nvidia-smi finds none (driver missing or no GPU): local_gpu cannot run here"
else
    note "no NVIDIA GPU here: use instance_type=\"local\" (local_gpu needs a GPU and the NVIDIA container toolkit)"
fi

# ------------------------------------------------------------------ SageMaker Python SDK
python=${PYTHON:-$(command -v python3 || command -v python || true)}
if [ -z "$python" ]; then
    missing "python3: not found" "install Python 3.11 or newer"
elif version=$("$python" -c 'import sagemaker; print("version=" + sagemaker.__version__)' 2>/dev/null); then
    version=${version##*version=}   # importing the SDK may log its config lookups first
    if [[ "$version" == 2.* ]]; then
        ok "sagemaker $version (SDK v2: Estimator and local mode)"
    else
        note "sagemaker $version: SDK v3 has no Estimator; the notebooks' local-mode cells need pip install 'sagemaker<3'"
    fi
elif $install && "$python" -m pip install --quiet 'sagemaker<3' && "$python" -c 'import sagemaker' 2>/dev/null; then
    ok "installed sagemaker $("$python" -c 'import sagemaker; print(sagemaker.__version__)')"
else
    missing "the SageMaker Python SDK is not importable by $python" "$python -m pip install 'sagemaker<3'"
fi

echo
if [ "$problems" -eq 0 ]; then
    echo "Ready for SageMaker local mode."
    exit 0
fi
echo "$problems thing(s) to fix before SageMaker local mode can run (see MISSING above)."
exit 1
