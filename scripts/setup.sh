#!/usr/bin/env bash
# Install albert-ner into a virtual environment. Idempotent: a second run installs nothing new.
#
#   scripts/setup.sh            .venv: the package with its test extras (what scripts/test.sh runs),
#                               (as root, with apt) the headless browser the report page test renders with,
#                               and .venv-label-studio: the Label Studio server its integration tests drive
#   scripts/setup.sh --runtime  .venv-job: the package with its runtime dependencies only (what
#                               scripts/main_job.sh runs, and what the image ships), so that the main job
#                               proves those dependencies are enough and a newcomer downloads no PyTorch,
#                               transformers, SageMaker SDK or Jupyter to run it
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
    "") venv=.venv; requirement=".[test]" ;;
    --runtime) venv=.venv-job; requirement="." ;;
    *) echo "setup: unknown argument '$1' (expected none, or --runtime)" >&2; exit 2 ;;
esac
PYTHON=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
    "$PYTHON" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e "$requirement"
if [ "$venv" = .venv-job ]; then
    exit 0
fi
# tests/test_report_page.py screenshots report.html with Debian's Chromium; a CJK font draws the sample's
# Chinese text. serve runs nginx in front of gunicorn where it is installed, as the images do
# (tests/test_reliability.py's slow-client test needs it). Without root or apt those tests are skipped
# (CI sets ALBERT_NER_REQUIRE_BROWSER=1 and ALBERT_NER_REQUIRE_NGINX=1: they fail).
if ! command -v chromium >/dev/null || ! fc-list :lang=zh 2>/dev/null | grep -q . || [ ! -x /usr/sbin/nginx ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fontconfig \
            fonts-liberation fonts-wqy-microhei nginx >/dev/null
    else
        echo "setup.sh: chromium or nginx not installed (needs root and apt-get); their tests will be skipped" >&2
    fi
fi
# tests/test_label_studio_server.py runs a real Label Studio server. It pins Django, NumPy, pytz and more that
# would clash with the test stack, so it gets a virtual environment of its own, installed by uv (from the test
# extra). Without PyPI its tests are skipped (CI sets ALBERT_NER_REQUIRE_LABEL_STUDIO=1: they fail).
LABEL_STUDIO_VERSION=1.23.2
studio=.venv-label-studio
if [ "$("$studio/bin/python" -c 'import importlib.metadata as m; print(m.version("label-studio"))' 2>/dev/null)" \
        != "$LABEL_STUDIO_VERSION" ]; then
    if ! { .venv/bin/uv venv --quiet --allow-existing --python "$venv/bin/python" "$studio" \
            && .venv/bin/uv pip install --quiet --system-certs --python "$studio/bin/python" \
                "label-studio==$LABEL_STUDIO_VERSION"; }; then
        echo "setup.sh: Label Studio $LABEL_STUDIO_VERSION could not be installed; its tests will be skipped" >&2
    fi
fi
