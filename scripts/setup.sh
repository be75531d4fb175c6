#!/usr/bin/env bash
# Create .venv and install albert-ner with its test extras, and (as root, with apt) the headless browser the
# report page test renders with. Idempotent: a second run installs nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
# tests/test_report_page.py screenshots report.html with Debian's Chromium; a CJK font draws the sample's
# Chinese text. Without root or apt the test is skipped (CI sets ALBERT_NER_REQUIRE_BROWSER=1: it fails).
if ! command -v chromium >/dev/null || ! fc-list :lang=zh 2>/dev/null | grep -q .; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fontconfig \
            fonts-liberation fonts-wqy-microhei >/dev/null
    else
        echo "setup.sh: chromium not installed (needs root and apt-get); the browser test will be skipped" >&2
    fi
fi
