"""pretrained_model names and the albert_zh archives: a fake archive host on 127.0.0.1 serving zips and tarballs
built with the real variable names (albert_fixtures), resumable checked downloads, and hostile archives."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import tarfile
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from albert_fixtures import write_pretrained_directory
from albert_ner.errors import CheckpointError, HyperparameterError
from albert_ner.modeling.albert import AlbertEncoder
from albert_ner.pretrained.archives import extract_archive
from albert_ner.pretrained.checkpoint import find_pretrained, load_pretrained, read_pretrained_config
from albert_ner.pretrained.sources import choose_pretrained, resolve_pretrained_model
from conftest import TINY_HYPERPARAMETERS, TRAIN, OptMl, sample_job


class ArchiveHost:
    """storage.googleapis.com's paths under a temporary root; counts requests; honours Range (resume), with
    416 and the length for a range past the end."""

    def __init__(self, root: Path):
        self.root = root
        self.requests: list[str] = []
        self.cut_after: int | None = None  # send only this many bytes of the next response, then hang up
        host = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(root), **kwargs)

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                host.requests.append(f"GET {self.path} {self.headers.get('Range') or ''}".strip())
                path = root / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                start = int(self.headers["Range"][6:].split("-")[0]) if self.headers.get("Range") else 0
                if start >= len(data) > 0:  # as real servers answer a range past the end (RFC 9110)
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if host.cut_after is not None:
                    body, host.cut_after = body[: host.cut_after], None
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def host(tmp_path):
    served = ArchiveHost(tmp_path / "served")
    yield served
    served.close()


def _zip_directory(source: Path, target: Path, top: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(source.iterdir()):
            bundle.write(path, f"{top}/{path.name}")


def _environ(tmp_path: Path, host: ArchiveHost) -> dict[str, str]:
    return {"ALBERT_NER_ARCHIVE_ENDPOINT": host.endpoint, "ALBERT_NER_CACHE_DIR": str(tmp_path / "cache")}


def test_brightmart_zip_downloads_unpacks_loads_and_is_cached(tmp_path, host, caplog):
    write_pretrained_directory(tmp_path / "albert_tiny", family="brightmart")
    _zip_directory(tmp_path / "albert_tiny", host.root / "albert_zh" / "albert_tiny.zip", "albert_tiny")
    environ = _environ(tmp_path, host)
    host.cut_after = 3000  # the first response breaks off: the download resumes with a Range request
    with caplog.at_level(logging.INFO):
        source = resolve_pretrained_model("albert_tiny_zh", environ)
    assert [request.split()[1] for request in host.requests] == ["/albert_zh/albert_tiny.zip"] * 2
    assert host.requests[1].endswith("bytes=3000-")
    files = find_pretrained(source.directory)
    report = load_pretrained(AlbertEncoder(read_pretrained_config(files)), files)
    assert report.family == "brightmart"
    provenance = source.provenance()
    assert provenance["source"] == "archive" and provenance["url"] == f"{host.endpoint}/albert_zh/albert_tiny.zip"
    assert provenance["weights_file"] == "albert_model.ckpt.data-00000-of-00001"
    assert provenance["revision"].startswith("sha256:") and len(provenance["weights_sha256"]) == 64
    assert "carries no licence file" in caplog.text
    assert not list((tmp_path / "cache").rglob("*.partial"))

    host.requests.clear()
    assert resolve_pretrained_model("albert_tiny_zh", environ).directory == source.directory
    assert host.requests == []


def test_google_tarball_by_its_prefixed_name(tmp_path, host):
    write_pretrained_directory(tmp_path / "albert_base", family="google")
    target = host.root / "albert_models" / "albert_base_zh.tar.gz"
    target.parent.mkdir(parents=True)
    with tarfile.open(target, "w:gz") as bundle:
        bundle.add(tmp_path / "albert_base", arcname="albert_base")
    source = resolve_pretrained_model("google/albert_base_zh", _environ(tmp_path, host))
    assert read_pretrained_config(find_pretrained(source.directory)).family == "google"


def test_missing_archive_names_the_url_and_the_variable(tmp_path, host):
    with pytest.raises(CheckpointError, match=r"pretrained_model='albert_large_zh': http://127.0.0.1:\d+/albert_zh/"
                                              r"albert_large_zh.zip answered HTTP 404.*ALBERT_NER_ARCHIVE_ENDPOINT"):
        resolve_pretrained_model("albert_large_zh", _environ(tmp_path, host))


def test_unknown_short_name_lists_the_known_ones_and_suggests(tmp_path):
    with pytest.raises(HyperparameterError, match=r"pretrained_model='albert_tiny_z': not a known albert_zh "
                                                  r"archive \(known: albert_tiny_zh, .*google/albert_xxlarge_zh\).*"
                                                  r"Did you mean 'albert_tiny_zh'\?"):
        resolve_pretrained_model("albert_tiny_z", {})
    with pytest.raises(HyperparameterError, match="not a known albert_zh archive"):
        resolve_pretrained_model("google/albert_huge_zh", {})


def test_precedence_and_conflicts(tmp_path):
    write_pretrained_directory(tmp_path / "baked")
    assert choose_pretrained(None, None, None, tmp_path / "baked", {}).origin["source"] == "image"
    assert choose_pretrained(None, str(tmp_path / "baked"), None, tmp_path / "other", {}).origin["source"] == \
        "directory"
    assert choose_pretrained(tmp_path / "baked", None, None, tmp_path / "other", {}).origin["source"] == "channel"
    with pytest.raises(HyperparameterError, match=r"given twice: hyperparameter pretrained_model='albert_tiny_zh' "
                                                  r"and hyperparameter pretrained_dir='/opt/x'"):
        choose_pretrained(None, "albert_tiny_zh", "/opt/x", None, {})
    with pytest.raises(CheckpointError, match="no such directory in the image"):
        resolve_pretrained_model(str(tmp_path / "absent"), {})


def _hostile_zip(path: Path, entries: list[tuple[str, bytes, int]]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            bundle.writestr(info, data)


def _hostile_tar(path: Path, member: tarfile.TarInfo, data: bytes = b"") -> None:
    with tarfile.open(path, "w:gz") as bundle:
        bundle.addfile(member, io.BytesIO(data) if data else None)


@pytest.mark.parametrize("kind, message", [
    ("zip ..", r"evil.zip: refused: entry 'albert/../../escape.txt' climbs out of the directory"),
    ("zip absolute", r"evil.zip: refused: entry '/etc/cron.d/escape' has an absolute path"),
    ("zip symlink", r"evil.zip: refused: entry 'albert/vocab.txt' is a symbolic link"),
    ("zip bomb", r"evil.zip: refused: its entries declare 50,000,000 bytes, over the cap of 1,000,000"),
    ("tar ..", r"evil.tar.gz: refused: entry '../escape.txt' climbs out of the directory"),
    ("tar absolute", r"evil.tar.gz: refused: entry '/tmp/escape.txt' has an absolute path"),
    ("tar symlink", r"evil.tar.gz: refused: entry 'albert/vocab.txt' is a symbolic link to '/etc/passwd'"),
    ("tar hardlink", r"evil.tar.gz: refused: entry 'albert/vocab.txt' is a hard link to '/etc/passwd'"),
    ("tar device", r"evil.tar.gz: refused: entry 'albert/null' is a device, FIFO or other special file"),
])
def test_hostile_archives_are_refused_by_name_and_leave_nothing(tmp_path, kind, message):
    regular = 0o100644
    if kind.startswith("zip"):
        archive = tmp_path / "evil.zip"
        entries = {
            "zip ..": [("albert/vocab.txt", b"x", regular), ("albert/../../escape.txt", b"x", regular)],
            "zip absolute": [("/etc/cron.d/escape", b"x", regular)],
            "zip symlink": [("albert/vocab.txt", b"/etc/passwd", 0o120777)],
            "zip bomb": [("albert/albert_model.ckpt.data-00000-of-00001", b"\0" * 50_000_000, regular)],
        }[kind]
        _hostile_zip(archive, entries)
    else:
        archive = tmp_path / "evil.tar.gz"
        name = {"tar ..": "../escape.txt", "tar absolute": "/tmp/escape.txt", "tar device": "albert/null"}.get(
            kind, "albert/vocab.txt")
        member = tarfile.TarInfo(name)
        if kind == "tar symlink":
            member.type, member.linkname = tarfile.SYMTYPE, "/etc/passwd"
        elif kind == "tar hardlink":
            member.type, member.linkname = tarfile.LNKTYPE, "/etc/passwd"
        elif kind == "tar device":
            member.type, member.devmajor, member.devminor = tarfile.CHRTYPE, 1, 3
        else:
            member.size = 1
        _hostile_tar(archive, member, b"x" if member.size else b"")
    destination = tmp_path / "out"
    with pytest.raises(CheckpointError, match=message):
        extract_archive(archive, destination, max_bytes=1_000_000)
    assert sorted(path.name for path in tmp_path.iterdir()) == [archive.name]
    assert not (tmp_path.parent / "escape.txt").exists()


def test_hostile_archive_from_the_host_is_refused_and_not_cached(tmp_path, host):
    target = host.root / "albert_zh" / "albert_tiny.zip"
    target.parent.mkdir(parents=True)
    _hostile_zip(target, [("albert_tiny/../../escape.txt", b"x", 0o100644)])
    environ = _environ(tmp_path, host)
    with pytest.raises(CheckpointError, match=r"pretrained_model='albert_tiny_zh': .*albert_tiny.zip: refused: "
                                              r"entry 'albert_tiny/../../escape.txt' climbs out"):
        resolve_pretrained_model("albert_tiny_zh", environ)
    # Nothing but the entry's lock file (kept, as lock files are: removing one races with its next user).
    assert [path.name for path in (tmp_path / "cache").rglob("*") if path.is_file()] == ["albert_tiny_zh.lock"]


def test_zip_bomb_cap_comes_from_the_environment(tmp_path, host, monkeypatch):
    target = host.root / "albert_zh" / "albert_tiny.zip"
    target.parent.mkdir(parents=True)
    _hostile_zip(target, [("albert_tiny/albert_model.ckpt.data-00000-of-00001", b"\0" * 5_000_000, 0o100644)])
    monkeypatch.setenv("ALBERT_NER_MAX_EXTRACTED_BYTES", "1000000")
    with pytest.raises(CheckpointError, match=r"albert_tiny.zip: refused: its entries declare 5,000,000 bytes, over "
                                              r"the cap of 1,000,000 .*ALBERT_NER_MAX_EXTRACTED_BYTES"):
        resolve_pretrained_model("albert_tiny_zh", _environ(tmp_path, host))
    assert sorted(p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()) == ["albert_tiny_zh.lock"]


def test_train_with_an_archive_name_then_from_the_warm_cache(tmp_path, host):
    write_pretrained_directory(tmp_path / "albert_tiny", family="brightmart", hidden_size=48, num_attention_heads=4,
                               intermediate_size=96)
    _zip_directory(tmp_path / "albert_tiny", host.root / "albert_zh" / "albert_tiny.zip", "albert_tiny")
    hyperparameters = {**TINY_HYPERPARAMETERS, "num_hidden_layers": "null", "epochs": "1", "max_steps": "3",
                       "pretrained_model": "albert_tiny_zh"}
    for run in ("first", "second"):
        opt_ml = OptMl(tmp_path / run)
        sample_job(opt_ml, hyperparameters)
        host.requests.clear()
        environ = {**os.environ, **_environ(tmp_path, host), "SAGEMAKER_BASE_DIR": str(opt_ml.base)}
        result = subprocess.run([sys.executable, str(TRAIN)], env=environ, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        assert "loaded 22 encoder tensors" in result.stdout
        assert host.requests == (["GET /albert_zh/albert_tiny.zip"] if run == "first" else [])
        provenance = json.loads((opt_ml.model_dir / "model_config.json").read_text())["pretrained"]
        assert provenance["source"] == "archive" and provenance["pretrained_model"] == "albert_tiny_zh"
