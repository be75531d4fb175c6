#!/usr/bin/env bash
# Write the lock files the images install from (container/requirements/*.txt): every package pinned to one
# version with the sha256 of each of its files on PyPI, so two builds a month apart install the same bytes
# (pip's --require-hashes refuses anything else). uv resolves them from the index's metadata alone, without
# downloading the multi-GB CUDA wheels.
#
#   scripts/lock.sh            after a change to pyproject.toml's dependencies or serve-onnx.in: resolve what
#                              changed, keeping every other pin (uv prefers the versions already locked)
#   scripts/lock.sh --upgrade  take the newest releases pyproject.toml allows (a security update)
#   scripts/lock.sh --check    write nothing; fail, naming the packages, if the locks are not what pyproject.toml
#                              and serve-onnx.in resolve to now
#
# The locks are universal (uv's --universal): one file serves x86_64 and arm64, and any Python from 3.11 on,
# with environment markers where the answer differs. $UV names the uv binary and $PYTHON a Python >= 3.11
# (defaults: scripts/setup.sh's .venv/bin/uv and .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
UV=$(realpath "${UV:-.venv/bin/uv}")
PYTHON=$(realpath "${PYTHON:-.venv/bin/python}")
locks=container/requirements
case "${1:-}" in
    "") mode=write; upgrade=() ;;
    --upgrade) mode=write; upgrade=(--upgrade) ;;
    --check) mode=check; upgrade=() ;;
    *) echo "lock: unknown argument '$1' (expected none, --upgrade or --check)" >&2; exit 2 ;;
esac
# --check resolves in a copy of the inputs laid out as here, so the files it writes (their "# via" comments
# name paths) can be compared with the committed ones byte for byte. The copies of the locks keep their pins
# (uv prefers them) but not their hashes, which uv would keep too: the check takes them from the index afresh.
committed=$PWD
if [ "$mode" = check ]; then
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    mkdir -p "$scratch/$locks"
    cp pyproject.toml "$scratch/"
    cp "$locks"/*.in "$scratch/$locks/"
    for lock in "$locks"/*.txt; do
        grep -E '^[A-Za-z0-9]' "$lock" | sed 's/ *\\$//' >"$scratch/$lock"
    done
    cd "$scratch"
fi
# setuptools builds the package itself, so it is locked too: then an image can build albert-ner from the lock
# alone. Its floor is pyproject.toml's [build-system] requirement, read from there.
build_system=$("$PYTHON" -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))')
compile() {
    local output=$1
    shift
    "$UV" pip compile --quiet --universal --python-version 3.11 --generate-hashes --system-certs \
        --custom-compile-command "scripts/lock.sh" ${upgrade[@]+"${upgrade[@]}"} -o "$locks/$output" "$@"
}
# The training image, TF_VARIANT=cpu and TF_VARIANT=gpu (TensorFlow's CUDA libraries as pip wheels).
compile train-cpu.txt pyproject.toml - <<<"$build_system"
compile train-gpu.txt pyproject.toml - <<<"$build_system"$'\ntensorflow[and-cuda]'
# The ONNX serving image: its own short list, held to the training image's versions (so both compute the
# same numbers).
compile serve-onnx.txt "$locks/serve-onnx.in" -c "$locks/train-cpu.txt" - <<<"$build_system"
if [ "$mode" = check ]; then
    # The whole file: a pin whose hashes were edited by hand is as stale as an outdated pin.
    stale=0
    for lock in "$locks"/*.txt; do
        diff -u --label "$lock (committed)" --label "$lock (resolved now)" "$committed/$lock" "$lock" || stale=1
    done
    if [ "$stale" = 1 ]; then
        echo "lock: the lock files above are stale: run scripts/lock.sh and commit them" >&2
        exit 1
    fi
fi
