#!/usr/bin/env bash
# Screenshot a report.html with headless Chromium (Debian's `chromium`), e.g. docs/report.png in the README.
#
#   scripts/report_screenshot.sh [REPORT_HTML [PNG]]
#
# Without REPORT_HTML it first trains the sample model for 40 steps (not to convergence, so that the page
# has errors to show). PNG defaults to docs/report.png; HEIGHT (pixels, default 3400) sets how much of the
# page is captured at a width of 1280. PYTHON defaults to .venv/bin/python (scripts/setup.sh makes it).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
page=${1:-}
png=${2:-docs/report.png}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "$page" ]; then
    base=$work/opt_ml
    mkdir -p "$base/input/config" "$base/input/data/training" "$base/input/data/validation" "$base/input/data/test"
    cp data/sample/train.txt "$base/input/data/training/"
    cp data/sample/validation.jsonl "$base/input/data/validation/"
    cp data/sample/test.txt "$base/input/data/test/"
    cat >"$base/input/config/hyperparameters.json" <<'JSON'
{"encoder_size": "tiny", "num_hidden_layers": "1", "lstm_units": "32", "max_seq_length": "32",
 "batch_size": "16", "epochs": "4", "learning_rate": "1e-3", "head_learning_rate": "5e-3",
 "max_steps": "40", "log_every_steps": "2", "eval_every_steps": "10"}
JSON
    if ! SAGEMAKER_BASE_DIR=$base "$PYTHON" container/ner/train >"$work/train.log" 2>&1; then
        tail -n 30 "$work/train.log" >&2
        exit 1
    fi
    page=$base/output/data/report.html
fi
if [ ! -f "$page" ]; then
    echo "report_screenshot: $page is not a file" >&2
    exit 1
fi
mkdir -p "$(dirname "$png")"
rm -f "$png"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --host-resolver-rules="MAP * ~NOTFOUND" \
    --user-data-dir="$work/chromium" --window-size="1280,${HEIGHT:-3400}" --screenshot="$(realpath -m "$png")" \
    "file://$(realpath "$page")" 2>"$work/chromium.log"
if [ ! -s "$png" ]; then
    echo "report_screenshot: chromium wrote no $png:" >&2
    cat "$work/chromium.log" >&2
    exit 1
fi
echo "wrote $png from $page"
