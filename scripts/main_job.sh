#!/usr/bin/env bash
# The main job on the bundled defaults: install, fetch the MSRA corpus, lay out an /opt/ml-style tree,
# run the SageMaker `train` program on it (CPU configuration, no pretrained weights) and print the
# per-type report on the MSRA test set.
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

bash scripts/setup.sh
.venv/bin/python data/fetch_msra.py

mkdir -p "$RUN_DIR/input/config" "$RUN_DIR/input/data"
ln -s "$PWD/data/msra/train" "$RUN_DIR/input/data/training"
ln -s "$PWD/data/msra/test" "$RUN_DIR/input/data/test"
cp "$HYPERPARAMETERS" "$RUN_DIR/input/config/hyperparameters.json"

started=$(date +%s)
SAGEMAKER_BASE_DIR="$RUN_DIR" PYTHONUNBUFFERED=1 .venv/bin/python container/ner/train
echo
echo "MSRA test set, entity level (strict), from $RUN_DIR/model/test_report.txt:"
cat "$RUN_DIR/model/test_report.txt"
echo "wall time: $(( $(date +%s) - started )) s of training job; artifacts in $RUN_DIR/model"
