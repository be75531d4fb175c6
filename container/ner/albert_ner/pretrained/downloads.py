"""Checked, resumable HTTP downloads of the albert_zh archives (the Hub has its own client, ``hub.py``).

A file is fetched into ``<name>.partial`` beside its destination and renamed into place only when its size
matches what the server announced (``Content-Length``, or the total of a ``Content-Range``) and, where the
source publishes one, its sha256: a truncated or corrupted archive is never used. The partial file stays
behind when a transfer breaks off, and the next attempt (in the same job, or a later one) asks for the rest
with a ``Range`` request. Progress goes to the job log every few seconds.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

from albert_ner.errors import CheckpointError
from albert_ner.redaction import redact_url

log = logging.getLogger(__name__)

ATTEMPTS = 3
_CHUNK = 1024 * 1024
_PROGRESS_SECONDS = 5.0
_TIMEOUT_SECONDS = 60
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
#: What a server answers with 416 (Range Not Satisfiable): the resource's whole length (RFC 9110, 14.4).
_UNSATISFIED_RANGE = re.compile(r"bytes \*/(\d+)")


def sha256_of(path: Path) -> str:
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def download(url: str, destination: Path, what: str, sha256: str | None = None) -> None:
    """Fetch ``url`` to ``destination``, resuming a partial file, or raise CheckpointError naming ``what``."""
    partial = destination.with_name(destination.name + ".partial")
    destination.parent.mkdir(parents=True, exist_ok=True)
    shown = redact_url(url)  # what messages say: the URL without any credentials in it
    for attempt in range(1, ATTEMPTS + 1):
        try:
            _fetch(url, partial, what)
            break
        except (OSError, http.client.HTTPException) as error:
            if isinstance(error, urllib.error.HTTPError):
                raise CheckpointError(f"{what}: {shown} answered HTTP {error.code} {error.reason}; check the name "
                                      "and ALBERT_NER_ARCHIVE_ENDPOINT (the mirror must keep the original paths)"
                                      ) from error
            if attempt == ATTEMPTS:
                raise CheckpointError(f"{what}: download from {shown} failed after {ATTEMPTS} attempts: {error}; "
                                      f"{partial.stat().st_size if partial.exists() else 0:,} bytes are kept in "
                                      f"{partial} and the next run resumes from there") from error
            log.warning("%s: download interrupted (%s); resuming (attempt %d of %d)", what, error, attempt + 1,
                        ATTEMPTS)
            time.sleep(attempt)
    if sha256 is not None:
        found = sha256_of(partial)
        if found != sha256:
            partial.unlink()
            raise CheckpointError(f"{what}: {shown} has sha256 {found}, but the published one is {sha256}; the "
                                  "download was removed: check ALBERT_NER_ARCHIVE_ENDPOINT's copy")
    os.replace(partial, destination)


def _fetch(url: str, partial: Path, what: str) -> None:
    have = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=_TIMEOUT_SECONDS)
    except urllib.error.HTTPError as error:
        if not (have and error.code == 416):
            raise
        # Nothing left to send from `have` on: the partial file is complete (the caller then checks its sha256)
        # when the server's length is `have`; otherwise it is not this file, and the download starts over.
        match = _UNSATISFIED_RANGE.fullmatch(error.headers.get("Content-Range", ""))
        if match is not None and int(match.group(1)) == have:
            log.info("%s: the %s kept from an earlier download are the whole file", what, _mib(have))
            return
        log.warning("%s: %s refused to resume at %s (HTTP 416, Content-Range %r); starting over", what, redact_url(url),
                    _mib(have), error.headers.get("Content-Range"))
        partial.unlink()
        _fetch(url, partial, what)
        return
    with response:
        if have and response.status == 206:
            match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
            if match is None or int(match.group(1)) != have:
                raise CheckpointError(f"{what}: {redact_url(url)} answered a resume request with Content-Range "
                                      f"{response.headers.get('Content-Range')!r}, not bytes {have}-")
            total = int(match.group(3))
            mode = "ab"
            log.info("%s: resuming at %s of %s", what, _mib(have), _mib(total))
        else:
            length = response.headers.get("Content-Length")
            if length is None or not length.isdigit():
                raise CheckpointError(f"{what}: {redact_url(url)} sends no Content-Length, so a complete download "
                                      "cannot be told from a truncated one")
            total, have, mode = int(length), 0, "wb"
        reported = time.monotonic()
        with open(partial, mode) as output:
            while chunk := response.read(_CHUNK):
                output.write(chunk)
                have += len(chunk)
                if time.monotonic() - reported >= _PROGRESS_SECONDS:
                    log.info("%s: %s of %s (%.0f%%)", what, _mib(have), _mib(total), 100 * have / max(total, 1))
                    reported = time.monotonic()
    if have != total:
        raise http.client.IncompleteRead(b"", total - have)
    log.info("%s: downloaded %s", what, _mib(total))


def _mib(size: int) -> str:
    return f"{size / 1024 ** 2:.1f} MiB"
