"""Credentials out of every URL the job logs or saves: user info, credential-looking query parameters, and
path segments that look like tokens.

Endpoints come from the user's environment (``ALBERT_NER_ARCHIVE_ENDPOINT``, ``HF_ENDPOINT``) and may carry
a secret; the log, ``output/failure`` (SageMaker's FailureReason), the cache manifest, ``model_config.json``
and ``report.html`` are read by people who must not learn it. Redaction keeps the scheme, host, port and
the rest of the path, so a message still says where a request went.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

REDACTED = "REDACTED"
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>`]+")
#: Query parameter names that carry secrets: tokens, keys, signatures (AWS's X-Amz-Signature,
#: X-Amz-Credential, X-Amz-Security-Token included), passwords, sessions.
_SECRET_NAME = re.compile(r"token|key|secret|passw|pwd|sig|credential|auth|session", re.IGNORECASE)
#: A path segment of 32 or more letters, digits, '-' and '_', with both letters and digits: a token, not a name.
_TOKEN_SEGMENT = re.compile(r"(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[\w-]{32,}")


def user_info(url: str) -> bool:
    """Whether ``url`` carries ``user[:password]@`` before its host."""
    return "@" in urlsplit(url).netloc


def redact_url(url: str) -> str:
    """``url`` without its user info, secret query values and token-like path segments."""
    parts = urlsplit(url)
    netloc = parts.netloc if "@" not in parts.netloc else f"{REDACTED}@{parts.netloc.rsplit('@', 1)[1]}"
    path = "/".join(REDACTED if _TOKEN_SEGMENT.fullmatch(segment) else segment for segment in parts.path.split("/"))
    query = "&".join(f"{pair.split('=', 1)[0]}={REDACTED}" if _SECRET_NAME.search(pair.split("=", 1)[0]) else pair
                     for pair in parts.query.split("&")) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, path, query, parts.fragment))


def redact_text(text: str) -> str:
    """``text`` with every URL in it redacted (:func:`redact_url`)."""
    return _URL.sub(lambda match: redact_url(match.group(0)), text)


class RedactingFormatter(logging.Formatter):
    """A log formatter whose lines (tracebacks included) carry no credentials of any URL in them."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))
