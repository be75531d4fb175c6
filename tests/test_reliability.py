"""Reliability under abuse and bad luck: each test reproduces a failure seen on an earlier main and pins its
fix. Marked ``reliability``, so the group runs alone: ``pytest -m reliability``."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest

from albert_ner.pretrained.downloads import download
from test_pretrained_sources import ArchiveHost
from test_serve import call, ready_app

pytestmark = pytest.mark.reliability


@pytest.fixture
def host(tmp_path: Path):
    served = ArchiveHost(tmp_path / "served")
    yield served
    served.close()


def _served_file(host: ArchiveHost, size: int = 200_000) -> tuple[str, bytes]:
    data = bytes(range(256)) * (size // 256)
    (host.root / "archives").mkdir(parents=True)
    (host.root / "archives" / "weights.zip").write_bytes(data)
    return f"{host.endpoint}/archives/weights.zip", data


def test_a_complete_partial_file_is_verified_and_kept(tmp_path: Path, host: ArchiveHost, caplog) -> None:
    """A crash after the last byte but before the rename leaves a complete ``.partial``: the resumed request
    gets 416, which means done (then the checksum decides), not a failure on every later run."""
    url, data = _served_file(host)
    destination = tmp_path / "cache" / "weights.zip"
    destination.parent.mkdir()
    destination.with_name("weights.zip.partial").write_bytes(data)
    with caplog.at_level(logging.INFO):
        download(url, destination, "test archive", hashlib.sha256(data).hexdigest())
    assert destination.read_bytes() == data and host.requests == [f"GET /archives/weights.zip bytes={len(data)}-"]
    assert "are the whole file" in caplog.text


def test_a_partial_file_longer_than_the_served_one_starts_over(tmp_path: Path, host: ArchiveHost) -> None:
    url, data = _served_file(host)
    destination = tmp_path / "weights.zip"
    destination.with_name("weights.zip.partial").write_bytes(data + b"left over from another file")
    download(url, destination, "test archive", hashlib.sha256(data).hexdigest())
    assert destination.read_bytes() == data
    assert host.requests == [f"GET /archives/weights.zip bytes={len(data) + 27}-", "GET /archives/weights.zip"]


def test_max_payload_of_zero_accepts_bodies_streamed_in_chunks() -> None:
    """``SAGEMAKER_MAX_PAYLOAD_IN_MB=0`` is AWS's value for batch transform bodies sent in HTTP chunks."""
    app = ready_app({"SAGEMAKER_BATCH": "true", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "0"})
    assert json.loads(call(app, "GET", "/execution-parameters")[1])["MaxPayloadInMB"] == 0
    body = ("a" * 1000 + "\n") * 7000  # 7 MB: past the 6 MB default
    for declared in (True, False):
        status, answer = call(app, "POST", "/invocations", body.encode(), "text/plain", content_length=declared)
        assert status == 200 and len(answer.decode().splitlines()) == 7000
