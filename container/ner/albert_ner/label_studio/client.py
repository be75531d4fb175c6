"""What the ML backend asks of Label Studio's REST API: a project's annotations, as its JSON export.

``LABEL_STUDIO_URL`` says where the server is and ``LABEL_STUDIO_API_KEY`` (the names Label Studio's SDK
reads) how to sign in. Label Studio has two kinds of key: the personal access token of 1.14 on (a JWT
refresh token, exchanged at ``POST /api/token/refresh/`` for an access token sent as ``Bearer``), and the
legacy token, sent as ``Token``; the key's shape says which it is, as the SDK decides. The key is sent in
a header only: it is never logged, written or put in a URL.

The standard library's ``urllib`` does the HTTP: the backend needs two requests, and Label Studio's SDK
would bring OpenCV, NLTK and their dependencies into the serving image.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from albert_ner.errors import AlbertNerError
from albert_ner.redaction import redact_url

URL_VARIABLE = "LABEL_STUDIO_URL"
KEY_VARIABLE = "LABEL_STUDIO_API_KEY"
_TIMEOUT_SECONDS = 300  # an export of a large project is built while the request waits


class LabelStudioError(AlbertNerError):
    """Label Studio cannot be reached, refuses the key, or answers what is not an export."""


class LabelStudioClient:
    """Signs in to one Label Studio server and downloads project exports."""

    def __init__(self, url: str, api_key: str):
        if not url.startswith(("http://", "https://")):
            raise LabelStudioError(f"{URL_VARIABLE}={redact_url(url)!r}: expected an http:// or https:// URL")
        if not api_key:
            raise LabelStudioError(f"{KEY_VARIABLE} is empty: give an access token from Label Studio's "
                                   "Account & Settings page")
        if not api_key.isascii() or not api_key.isprintable() or " " in api_key:
            raise LabelStudioError(f"{KEY_VARIABLE} holds characters no Label Studio token has (spaces, "
                                   "control characters or non-ASCII)")
        self.url = url.rstrip("/")
        self._key = api_key

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> LabelStudioClient | None:
        """The client the environment describes, or None when ``LABEL_STUDIO_URL`` is unset."""
        url = environ.get(URL_VARIABLE, "").strip()
        if not url:
            return None
        return cls(url, environ.get(KEY_VARIABLE, "").strip())

    def export(self, project: int) -> list[dict[str, Any]]:
        """The project's annotated tasks in Label Studio's JSON export format."""
        tasks = self._request(f"/api/projects/{project}/export?exportType=JSON", self._authorization())
        if not isinstance(tasks, list):
            raise LabelStudioError(f"project {project}'s export is not a list of tasks "
                                   f"(found {type(tasks).__name__})")
        return tasks

    def _authorization(self) -> str:
        if not _is_jwt(self._key):
            return f"Token {self._key}"
        answer = self._request("/api/token/refresh/", None, {"refresh": self._key})
        access = answer.get("access") if isinstance(answer, dict) else None
        if not isinstance(access, str):
            raise LabelStudioError("Label Studio's /api/token/refresh/ gave no access token for "
                                   f"{KEY_VARIABLE}")
        return f"Bearer {access}"

    def _request(self, path: str, authorization: str | None, body: Any = None) -> Any:
        url = self.url + path
        headers = {"Accept": "application/json"}
        if authorization is not None:
            headers["Authorization"] = authorization
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
        where = redact_url(url)
        try:
            with _OPENER.open(request, timeout=_TIMEOUT_SECONDS) as response:
                text = response.read()
        except urllib.error.HTTPError as error:
            error.close()
            hint = (f": check {KEY_VARIABLE}" if error.code in (401, 403) else
                    ": no such project" if error.code == 404 else
                    f": {URL_VARIABLE} must be Label Studio's own address" if 300 <= error.code < 400 else "")
            raise LabelStudioError(f"Label Studio answered {error.code} {error.reason} to {where}{hint}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise LabelStudioError(f"cannot reach Label Studio at {where} ({URL_VARIABLE}): {reason}") from None
        try:
            return json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            raise LabelStudioError(f"Label Studio's answer to {where} is not JSON") from None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """urllib would send the Authorization header on to wherever a redirect points: a redirect is an error."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def _is_jwt(key: str) -> bool:
    """Whether ``key`` is a JSON Web Token (three base64url parts, the first a JSON header naming ``alg``)."""
    parts = key.split(".")
    if len(parts) != 3:
        return False
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(header, dict) and "alg" in header
