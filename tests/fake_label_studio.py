"""Label Studio's REST API on 127.0.0.1, for the two requests the ML backend makes of it, answered as
Label Studio 1.23 answers them (label_studio/data_export/api.py, jwt_auth/):

* ``GET /api/projects/{id}/export?exportType=JSON``: the project's tasks as its JSON export, with
  ``Authorization: Token LEGACY`` or ``Bearer ACCESS``; 401 otherwise, 404 for an unknown project;
* ``POST /api/token/refresh/`` ``{"refresh": PAT}``: ``{"access": ACCESS}`` for the personal access token.

Every request's path and Authorization header is recorded in ``requests``.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from albert_ner.sentences import Sentence

LEGACY_TOKEN = "f00dfacef00dfacef00dfacef00dfacef00dface"
ACCESS_TOKEN = "access-token-for-the-session"


def personal_access_token() -> str:
    """A JWT-shaped refresh token, as Label Studio 1.14+ issues on the Account & Settings page."""
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'token_type': 'refresh', 'user_id': 1})}.c2lnbmF0dXJl"


def export_of(sentences: list[Sentence]) -> list[dict[str, Any]]:
    """Sentences as Label Studio's JSON export of the stock NER template, one annotation per task."""
    tasks = []
    for number, sentence in enumerate(sentences, start=1):
        text = "".join(sentence.tokens)
        result = [{"id": f"r{index}", "from_name": "label", "to_name": "text", "type": "labels", "origin": "manual",
                   "value": {"start": entity.start, "end": entity.end, "text": text[entity.start:entity.end],
                             "labels": [entity.type]}}
                  for index, entity in enumerate(sentence.entities)]
        tasks.append({"id": number, "data": {"text": text}, "predictions": [],
                      "annotations": [{"id": number, "result": result, "was_cancelled": False,
                                       "created_at": "2026-12-04T10:00:00Z", "completed_by": 1}]})
    return tasks


@dataclass
class FakeLabelStudio:
    exports: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    redirect_to: str | None = None  # answer every GET with a 302 there (a proxy's login page, say)

    def start(self) -> str:
        studio = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                studio.requests.append((self.path, self.headers.get("Authorization", "")))
                if studio.redirect_to is not None:
                    self.send_response(302)
                    self.send_header("Location", studio.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                if self.headers.get("Authorization") not in (f"Token {LEGACY_TOKEN}", f"Bearer {ACCESS_TOKEN}"):
                    return self._json(401, {"detail": "Authentication credentials were not provided."})
                parts = self.path.split("?", 1)[0].strip("/").split("/")
                if len(parts) == 4 and parts[:2] == ["api", "projects"] and parts[3] == "export" \
                        and parts[2].isdigit() and int(parts[2]) in studio.exports:
                    return self._json(200, studio.exports[int(parts[2])])
                self._json(404, {"detail": "Not found."})

            def do_POST(self) -> None:
                studio.requests.append((self.path, self.headers.get("Authorization", "")))
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path == "/api/token/refresh/" and body.get("refresh") == personal_access_token():
                    return self._json(200, {"access": ACCESS_TOKEN})
                self._json(401, {"detail": "Token is invalid or expired"})

            def _json(self, status: int, value: Any) -> None:
                body = json.dumps(value, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
