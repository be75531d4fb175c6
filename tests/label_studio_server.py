"""A real Label Studio server for the integration tests (and bench/label_studio_loop.py): the release
scripts/setup.sh installs into ``.venv-label-studio``, started on a free local port with a throwaway SQLite
data directory, a created user and a legacy API token, and driven through its REST API as its SDK and
browser front end drive it.

The settings a local test needs: ``ML_BLOCK_LOCAL_IP=false`` (Label Studio refuses ML backends on local
addresses), ``SSRF_PROTECTION_ENABLED=false`` (and webhooks to them), and ``--enable-legacy-api-token``
(new installations accept only personal access tokens otherwise).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv-label-studio"
EXECUTABLE = VENV / "bin" / "label-studio"
USER, PASSWORD, TOKEN = "annotator@example.com", "annotator-password", "0123456789abcdef0123456789abcdef01234567"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LabelStudioServer:
    url: str
    process: subprocess.Popen
    log: Path

    def api(self, method: str, path: str, body: Any = None, timeout: float = 120) -> Any:
        """One REST call with the legacy token; the decoded JSON answer (None for an empty one)."""
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Authorization": f"Token {TOKEN}",
                                                  "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                text = response.read()
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{method} {path}: {error.code} {error.read()[:2000]!r}") from None
        return json.loads(text) if text.strip() else None

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-5000:]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_label_studio(data_dir: Path, timeout: float = 300) -> LabelStudioServer:
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "label-studio.log"
    environ = dict(os.environ, ML_BLOCK_LOCAL_IP="false", SSRF_PROTECTION_ENABLED="false",
                   COLLECT_ANALYTICS="false", SENTRY_DSN="", FRONTEND_SENTRY_DSN="",
                   LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="true")
    with open(log, "w", encoding="utf-8") as output:
        process = subprocess.Popen(
            [str(EXECUTABLE), "start", "--no-browser", "--port", str(port), "--host", "127.0.0.1",
             "--data-dir", str(data_dir), "--username", USER, "--password", PASSWORD, "--user-token", TOKEN,
             "--enable-legacy-api-token"],
            env=environ, stdout=output, stderr=subprocess.STDOUT)
    server = LabelStudioServer(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"Label Studio exited with {process.returncode}:\n{server.output()}")
        try:
            with urllib.request.urlopen(server.url + "/health", timeout=5) as response:
                if json.loads(response.read()).get("status") == "UP":
                    return server
        except (OSError, ValueError):
            pass
        time.sleep(1)
    server.stop()
    raise AssertionError(f"Label Studio did not answer /health within {timeout} s:\n{server.output()}")
