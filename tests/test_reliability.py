"""Reliability under abuse and bad luck: each test reproduces a failure seen on an earlier main and pins its
fix. Marked ``reliability``, so the group runs alone: ``pytest -m reliability``."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from albert_fixtures import write_pretrained_directory
from albert_ner.errors import CheckpointError
from albert_ner.pretrained.downloads import download
from albert_ner.pretrained.sources import resolve_pretrained_model
from albert_ner.redaction import REDACTED, redact_text, redact_url
from conftest import TINY_HYPERPARAMETERS, OptMl, sample_job
from test_pretrained_sources import ArchiveHost, _zip_directory
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


# ---------------------------------------------------------------------------------------------- secrets
TOKEN = "tok0123456789abcdefghijABCDEFGHIJ42"


def test_urls_lose_user_info_secret_parameters_and_token_segments() -> None:
    assert redact_url("http://user:secret@host:8080/a/b.zip") == f"http://{REDACTED}@host:8080/a/b.zip"
    assert redact_url(f"https://host/{TOKEN}/albert_zh/x.zip") == f"https://host/{REDACTED}/albert_zh/x.zip"
    signed = "https://b.s3.amazonaws.com/x.zip?X-Amz-Credential=AKIA&X-Amz-Signature=abc&X-Amz-Expires=60"
    assert redact_url(signed) == (f"https://b.s3.amazonaws.com/x.zip?X-Amz-Credential={REDACTED}"
                                  f"&X-Amz-Signature={REDACTED}&X-Amz-Expires=60")
    assert redact_url("https://huggingface.co/albert_zh/x.zip") == "https://huggingface.co/albert_zh/x.zip"
    text = "failed: <urlopen http://u:pw@h/x?token=t1 reset> and 'https://h/y?api_key=k2'"
    assert "pw" not in redact_text(text) and "t1" not in redact_text(text) and "k2" not in redact_text(text)


def test_an_endpoint_with_user_info_is_refused_by_name_without_its_secret(opt_ml: OptMl,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The job fails naming ALBERT_NER_ARCHIVE_ENDPOINT; neither output/failure nor the log holds the password."""
    sample_job(opt_ml, {**TINY_HYPERPARAMETERS, "pretrained_model": "albert_tiny_zh"})
    monkeypatch.setenv("ALBERT_NER_ARCHIVE_ENDPOINT", "http://builder:s3cr3t@127.0.0.1:9/mirror")
    result = opt_ml.run_train()
    assert result.returncode == 1
    failure = opt_ml.failure.read_text(encoding="utf-8")
    assert failure.startswith("ALBERT_NER_ARCHIVE_ENDPOINT=") and "user name and password" in failure
    for text in (failure, result.stdout + result.stderr, (opt_ml.output_data_dir / "training.log").read_text()):
        assert "s3cr3t" not in text


def test_a_token_in_the_endpoint_path_is_not_saved(tmp_path: Path, host: ArchiveHost) -> None:
    """The cache manifest and the provenance (model_config.json, report.html) keep the URL without the token."""
    write_pretrained_directory(tmp_path / "albert_tiny", family="brightmart")
    _zip_directory(tmp_path / "albert_tiny", host.root / TOKEN / "albert_zh" / "albert_tiny.zip", "albert_tiny")
    environ = {"ALBERT_NER_ARCHIVE_ENDPOINT": f"{host.endpoint}/{TOKEN}", "ALBERT_NER_CACHE_DIR": str(tmp_path / "c")}
    source = resolve_pretrained_model("albert_tiny_zh", environ)
    assert source.provenance()["url"] == f"{host.endpoint}/{REDACTED}/albert_zh/albert_tiny.zip"
    saved = [path.read_text(encoding="utf-8") for path in (tmp_path / "c").rglob("*.json")]
    assert saved and not any(TOKEN in text for text in saved)


def test_a_download_error_names_the_url_without_its_secret(tmp_path: Path, host: ArchiveHost) -> None:
    with pytest.raises(CheckpointError) as raised:
        download(f"{host.endpoint}/missing.zip?token=s3cr3t", tmp_path / "x.zip", "test archive")
    assert "HTTP 404" in str(raised.value) and "s3cr3t" not in str(raised.value)


# ------------------------------------------------------------------------------------------------ the job
def test_files_an_earlier_run_left_in_the_model_directory_are_removed(opt_ml: OptMl) -> None:
    """A calibration.json from another model made the served scores use its temperature (4.0) while the
    fresh SavedModel used 1.0: train owns the model directory, so what it did not write goes, logged."""
    from albert_ner.prediction import Predictor

    sample_job(opt_ml, TINY_HYPERPARAMETERS)
    opt_ml.model_dir.mkdir(parents=True)
    (opt_ml.model_dir / "calibration.json").write_text('{"temperature": 4.0}\n', encoding="utf-8")
    (opt_ml.model_dir / "old_export").mkdir()
    (opt_ml.model_dir / "old_export" / "saved_model.pb").write_bytes(b"stale")
    result = opt_ml.run_train()
    assert result.returncode == 0, result.stdout[-3000:]
    assert not (opt_ml.model_dir / "calibration.json").exists() and not (opt_ml.model_dir / "old_export").exists()
    for name in ("calibration.json", "old_export"):
        assert f"removed {opt_ml.model_dir / name} from the model directory" in result.stdout
    assert Predictor.load(opt_ml.model_dir).temperature == 1.0
    assert {"model.weights.h5", "model_config.json", "vocab.txt", "1", "validation_report.json"} <= {
        path.name for path in opt_ml.model_dir.iterdir()}


def test_a_corrupt_checkpoint_state_file_resumes_instead_of_starting_over(opt_ml: OptMl) -> None:
    """``checkpoints/checkpoint`` cut to 20 bytes: the next run resumes from the newest ckpt-N on disk."""
    sample_job(opt_ml, {**TINY_HYPERPARAMETERS, "epochs": "1", "max_steps": "20", "checkpoint_every_steps": "10"})
    first = opt_ml.run_train()
    assert first.returncode == 0, first.stdout[-3000:]
    checkpoints = opt_ml.base / "checkpoints"
    state_file = checkpoints / "checkpoint"
    state_file.write_bytes(state_file.read_bytes()[:20])
    opt_ml.write_hyperparameters({**TINY_HYPERPARAMETERS, "epochs": "1", "max_steps": "25",
                                  "checkpoint_every_steps": "10"})
    second = opt_ml.run_train()
    assert second.returncode == 0, second.stdout[-3000:]
    assert "lists no checkpoint" in second.stdout
    assert re.search(r"resuming from checkpoint \S+ckpt-20: epoch \d+, batch \d+, step 20", second.stdout)


# ------------------------------------------------------------------------------------------ the endpoint
def test_client_errors_are_answered_400_not_500() -> None:
    """100,000 ``[`` raised RecursionError (500, a traceback in the log); a lone surrogate inside an entity
    raised UnicodeEncodeError (500) when the answer was written."""
    app = ready_app({})
    status, body = call(app, "POST", "/invocations", b"[" * 100_000)
    assert status == 400 and "nested too deeply" in json.loads(body)["error"]
    status, body = call(app, "POST", "/invocations", b'{"text": "ab\\ud800cd"}')
    assert status == 400 and "lone surrogate (U+D800)" in json.loads(body)["error"]
    status, body = call(app, "POST", "/invocations", b'"ok"\n"x\\udfffy"\n', "application/jsonlines")
    assert status == 400 and json.loads(body)["error"].startswith("text 2: character 1 is a lone surrogate")


def test_one_failing_request_does_not_fail_those_that_shared_its_batch() -> None:
    import threading

    from albert_ner.serving.batcher import DynamicBatcher
    from test_serve import fake_predict

    started = threading.Event()

    def predict(texts: list[str]) -> list:
        if texts == ["first"]:
            started.wait(5)  # holds the thread until the next three requests wait in one batch
        if "boom" in texts:
            raise RuntimeError("boom")
        return fake_predict(texts)

    batcher = DynamicBatcher(predict, max_batch_size=64, max_delay=0.05)
    first = batcher.submit(["first"])
    futures = [batcher.submit(texts) for texts in (["a"], ["boom"], ["b", "c"])]
    started.set()
    assert first.result(5)[0][0]["text"] == "first"
    assert futures[0].result(5)[0][0]["text"] == "a" and len(futures[2].result(5)) == 2
    with pytest.raises(RuntimeError, match="boom"):
        futures[1].result(5)


def test_deeply_nested_json_in_a_training_file_is_a_named_error(tmp_path: Path) -> None:
    from albert_ner.data import read_data_file
    from albert_ner.errors import DataError

    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "好", "entities": []}\n' + "[" * 100_000 + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"train\.jsonl:2: JSON nested too deeply"):
        read_data_file(path)


@pytest.mark.parametrize("damage", ["missing directory", "config not JSON", "no weights"])
def test_a_broken_model_directory_is_named_in_model_terms_without_host_paths(trained_job, tmp_path: Path,
                                                                              damage: str) -> None:
    """/ping and /invocations answered 500 with a local path and a bare ``JSONDecodeError``."""
    import shutil

    from albert_ner.environment import ServingSettings
    from albert_ner.prediction import Predictor
    from albert_ner.serving.application import InferenceApp

    opt_ml, _ = trained_job
    model_dir = tmp_path / "secret-host-dir" / "model"
    if damage != "missing directory":
        shutil.copytree(opt_ml.model_dir, model_dir)
    if damage == "config not JSON":
        (model_dir / "model_config.json").write_text('{"tagger": ', encoding="utf-8")
    if damage == "no weights":
        (model_dir / "model.weights.h5").unlink()
    # The worker's loader without its TensorFlow thread settings, which this test process may have fixed already;
    # on TensorFlow, which needs the weights (the ONNX runtimes read onnx/).
    settings = ServingSettings.from_environ({"SM_MODEL_DIR": str(model_dir), "SAGEMAKER_MODEL_SERVER_WORKERS": "1"})
    app = InferenceApp(settings, lambda: Predictor.load(settings.model_dir, runtime="tensorflow"))
    app._loader.join()
    expected = {"missing directory": "the model directory does not exist",
                "config not JSON": "model_config.json is not JSON (line 1, column 12",
                "no weights": "the model directory has no model.weights.h5"}[damage]
    for method, path in (("GET", "/ping"), ("POST", "/invocations")):
        status, body = call(app, method, path, b'{"text": "a"}')
        error = json.loads(body)["error"]
        assert status == 500 and expected in error, error
        assert "secret-host-dir" not in error and "Traceback" not in error and "JSONDecodeError" not in error


def _recording_predict(batches: list[list[str]], seconds_per_batch: float, model: Callable | None = None):
    """A fake model (test_serve's ``fake_scored`` unless given), appending each model batch to ``batches`` and
    taking ``seconds_per_batch``."""
    from test_serve import fake_scored

    def predict(texts: list[str]) -> list:
        batches.append(list(texts))
        time.sleep(seconds_per_batch)
        return (model or fake_scored)(texts)

    return predict


def _slow_app(environ: dict[str, str], seconds_per_batch: float, batches: list[list[str]]):
    return ready_app(environ, _recording_predict(batches, seconds_per_batch))


def test_a_request_of_too_many_texts_is_413_naming_the_limit() -> None:
    """A 1 MB body of a million empty lines took 36 s and 1.2 GB in the worker."""
    app = ready_app({})
    started = time.monotonic()
    status, body = call(app, "POST", "/invocations", b"\n" * 1_000_000, "text/plain")
    error = json.loads(body)["error"]
    assert status == 413 and time.monotonic() - started < 10
    assert "1,000,000 texts" in error and "the limit is 1,000 per request (ALBERT_NER_MAX_TEXTS_PER_REQUEST)" in error
    assert call(app, "POST", "/invocations", b"\n" * 1000, "text/plain")[0] == 200  # 1,000 empty texts
    assert call(ready_app({"ALBERT_NER_MAX_TEXTS_PER_REQUEST": "3"}), "POST", "/invocations", b'["a", "b", "c", "d"]'
                )[0] == 413
    # Batch transform has no such limit: its bodies are many lines by design.
    status, body = call(ready_app({"SAGEMAKER_BATCH": "true"}), "POST", "/invocations", b"a\n" * 5000, "text/plain")
    assert status == 200 and len(body.splitlines()) == 5000


def test_a_request_past_its_deadline_is_504_and_its_remaining_batches_are_dropped() -> None:
    """SAGEMAKER_MODEL_SERVER_TIMEOUT=5 did not stop a 19 s request, and the work went on after the client had gone."""
    batches: list[list[str]] = []
    app = _slow_app({"SAGEMAKER_MODEL_SERVER_TIMEOUT": "1", "ALBERT_NER_MAX_TEXTS_PER_REQUEST": "0",
                     "SAGEMAKER_MAX_BATCH_SIZE": "64"}, 0.05, batches)
    started = time.monotonic()
    status, body = call(app, "POST", "/invocations", b"ab\n" * 6400, "text/plain")  # 100 batches: 5 s of work
    elapsed = time.monotonic() - started
    error = json.loads(body)["error"]
    assert status == 504 and 1 <= elapsed < 1.5, (status, elapsed)
    assert re.search(r"did not finish within 1 s \(SAGEMAKER_MODEL_SERVER_TIMEOUT\): \d+ of its 6400 texts", error)
    time.sleep(0.2)
    done = len(batches)
    time.sleep(0.5)
    assert len(batches) == done < 30  # nothing more runs for it
    # The worker is free at once for the next request.
    assert call(app, "POST", "/invocations", b'{"text": "ok"}')[0] == 200


def test_a_short_request_behind_a_large_one_waits_about_one_batch() -> None:
    """The batcher ran a request whole: a 2-character request behind a 100,000-line one waited 31 s."""
    from albert_ner.serving.batcher import DynamicBatcher
    from test_serve import fake_predict

    batches: list[list[str]] = []
    batcher = DynamicBatcher(_recording_predict(batches, 0.01, fake_predict), max_batch_size=16, max_delay=0)
    large = batcher.submit([f"x{number}" for number in range(1600)])
    while len(batches) < 3:
        time.sleep(0.001)
    submitted_at = len(batches)
    assert batcher.predict(["ab"], timeout=5)[0][0]["text"] == "ab"
    went_in = next(index for index, batch in enumerate(batches) if "ab" in batch)
    assert went_in <= submitted_at + 1  # the batch running when it came, then its own
    assert [entities[0]["text"] for entities in large.result(30)] == [f"x{number}" for number in range(1600)]
    assert max(map(len, batches)) == 16


def test_batch_transform_answers_stream_a_chunk_at_a_time() -> None:
    """A batch-transform body of short lines went through the model, and into memory, whole."""
    from albert_ner.serving.application import STREAMED_CHUNK_TEXTS

    batches: list[list[str]] = []
    app = _slow_app({"SAGEMAKER_BATCH": "true", "SAGEMAKER_MAX_BATCH_SIZE": "256"}, 0, batches)
    lines = [f"{number}号" for number in range(5000)]
    status, body = call(app, "POST", "/invocations", ("\n".join(lines) + "\n").encode(), "text/plain")
    assert status == 200
    assert [json.loads(line)["entities"][0]["text"] for line in body.decode().splitlines()] == lines
    assert max(map(len, batches)) <= 256
    status, body = call(app, "POST", "/invocations", json.dumps(lines).encode())
    assert [item["entities"][0]["text"] for item in json.loads(body)["predictions"]] == lines
    assert STREAMED_CHUNK_TEXTS < 5000


def test_the_real_server_limits_texts_and_keeps_its_deadline(trained_job, tmp_path: Path) -> None:
    from test_serve import Server

    opt_ml, _ = trained_job
    server = Server(opt_ml.base, {"SAGEMAKER_MODEL_SERVER_TIMEOUT": "2"})
    try:
        server.wait_ready()
        status, _, body = server.invoke("\n" * 1_000_000, "text/plain")
        assert status == 413 and "ALBERT_NER_MAX_TEXTS_PER_REQUEST" in json.loads(body)["error"]
    finally:
        server.stop()
    server = Server(opt_ml.base, {"SAGEMAKER_MODEL_SERVER_TIMEOUT": "2", "ALBERT_NER_MAX_TEXTS_PER_REQUEST": "0"})
    try:
        server.wait_ready()
        started = time.monotonic()
        status, _, body = server.invoke("张三在北京工作。\n" * 100_000, "text/plain")
        assert status == 504 and time.monotonic() - started < 6
        assert "SAGEMAKER_MODEL_SERVER_TIMEOUT" in json.loads(body)["error"]
        started = time.monotonic()
        status, _, _ = server.invoke('{"text": "李四"}')
        assert status == 200 and time.monotonic() - started < 3  # the dropped work no longer runs
    finally:
        server.stop()


def _slow_clients(port: int, count: int) -> list:
    """``count`` sockets that send their headers and 3 of 1,000 declared body bytes, then nothing."""
    import socket

    sockets = []
    for _ in range(count):
        connection = socket.create_connection(("127.0.0.1", port), timeout=60)
        connection.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 1000\r\n\r\n{\"t")
        sockets.append(connection)
    return sockets


def test_slow_clients_do_not_take_ping_down(trained_job) -> None:
    """Twenty sockets holding a partial body made /ping time out for as long as they stayed open: nginx in
    front now reads every request whole before gunicorn sees it, and drops a client silent for 20 s."""
    import os

    from albert_ner.serving.nginx import CLIENT_TIMEOUT_S, nginx_binary
    from test_serve import Server

    if nginx_binary({}) is None:
        if os.environ.get("ALBERT_NER_REQUIRE_NGINX") == "1":
            pytest.fail("nginx is not installed (scripts/setup.sh installs it as root)")
        pytest.skip("nginx is not installed (scripts/setup.sh installs it as root)")
    opt_ml, _ = trained_job
    server = Server(opt_ml.base, {"ALBERT_NER_RUNTIME": "onnx"})
    try:
        server.wait_ready()
        assert "nginx in front" in server.output()
        started = time.monotonic()
        slow = _slow_clients(server.port, 40)  # more than gunicorn's 16 threads
        while time.monotonic() - started < 3:
            ping_started = time.monotonic()
            assert server.request("GET", "/ping", timeout=2)[0] == 200
            assert time.monotonic() - ping_started < 1
            time.sleep(0.1)
        status, _, body = server.invoke('{"text": "张三在北京工作。"}')
        assert status == 200 and "entities" in json.loads(body)
        # A client that stays silent is dropped after CLIENT_TIMEOUT_S (nginx closes, with or without a 408).
        slow[0].settimeout(CLIENT_TIMEOUT_S + 15)
        answer = slow[0].recv(1000)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer
        assert time.monotonic() - started > CLIENT_TIMEOUT_S - 2
        for connection in slow:
            connection.close()
    finally:
        server.stop()


def _tiny_archive(tmp_path: Path, host: ArchiveHost) -> dict[str, str]:
    write_pretrained_directory(tmp_path / "albert_tiny", family="brightmart")
    _zip_directory(tmp_path / "albert_tiny", host.root / "albert_zh" / "albert_tiny.zip", "albert_tiny")
    return {"ALBERT_NER_ARCHIVE_ENDPOINT": host.endpoint, "ALBERT_NER_CACHE_DIR": str(tmp_path / "cache")}


def test_two_jobs_sharing_a_cache_take_turns(tmp_path: Path, host: ArchiveHost) -> None:
    """Two processes downloading the same archive into one cache died with a bare FileNotFoundError, or one
    resumed into the other's file: now the second waits for the first's download and reuses it."""
    import fcntl
    import os
    import subprocess
    import sys

    environ = _tiny_archive(tmp_path, host)
    script = ("import logging, os, sys; logging.basicConfig(level=logging.INFO, stream=sys.stdout); "
              "from albert_ner.pretrained.sources import resolve_pretrained_model; "
              "print('DIRECTORY', resolve_pretrained_model('albert_tiny_zh', os.environ).directory)")
    lock = tmp_path / "cache" / "locks" / "albert_tiny_zh.lock"
    lock.parent.mkdir(parents=True)
    logs = [tmp_path / f"job{number}.log" for number in range(2)]
    with open(lock, "a+b") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # both jobs come to the entry while it is busy
        jobs = [subprocess.Popen([sys.executable, "-c", script], env={**os.environ, **environ},
                                 stdout=open(log, "w"), stderr=subprocess.STDOUT) for log in logs]
        deadline = time.monotonic() + 120
        while not all("another process holds" in log.read_text() for log in logs):
            assert time.monotonic() < deadline and all(job.poll() is None for job in jobs), [
                log.read_text()[-2000:] for log in logs]
            time.sleep(0.2)
        assert host.requests == []
    for job in jobs:
        job.wait(120)
    outputs = [log.read_text() for log in logs]
    assert [job.returncode for job in jobs] == [0, 0], outputs
    assert len({line for output in outputs for line in output.splitlines() if line.startswith("DIRECTORY")}) == 1
    assert host.requests == ["GET /albert_zh/albert_tiny.zip"]  # one download, reused by the other job
    assert sum("every file's sha256 checked" in output for output in outputs) == 1


def test_a_cached_copy_is_verified_not_trusted(tmp_path: Path, host: ArchiveHost, caplog) -> None:
    """The cache's manifest records every file's sha256; a changed or missing file means download again."""
    environ = _tiny_archive(tmp_path, host)
    directory = resolve_pretrained_model("albert_tiny_zh", environ).directory
    manifest = json.loads((directory / ".albert-ner-source.json").read_text(encoding="utf-8"))
    weights = next(directory.rglob("*.data-00000-of-00001"))
    assert manifest["files"][weights.relative_to(directory).as_posix()] == hashlib.sha256(weights.read_bytes()
                                                                                           ).hexdigest()
    original = weights.read_bytes()
    weights.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    host.requests.clear()
    with caplog.at_level(logging.INFO):
        again = resolve_pretrained_model("albert_tiny_zh", environ).directory
    assert "cannot be trusted" in caplog.text and "sha256 differs" in caplog.text
    assert host.requests == ["GET /albert_zh/albert_tiny.zip"]
    assert next(again.rglob("*.data-00000-of-00001")).read_bytes() == original
    host.requests.clear()
    resolve_pretrained_model("albert_tiny_zh", environ)
    assert host.requests == []  # intact: reused


@pytest.mark.parametrize("kind, message", [
    ("duplicate", r"evil.zip: refused: entry 'albert/vocab.txt' appears twice"),
    ("file then directory", r"evil.zip: refused: entry 'albert/vocab.txt/x' clashes with an earlier one"),
    ("2,000 levels", r"evil.zip: refused: entry 'a/a/a.*is 2,001 levels deep"),
    ("tar member .", r"evil.tar: refused: entry '.' is a file with no name"),
])
def test_archive_edge_cases_are_named_errors(tmp_path: Path, kind: str, message: str) -> None:
    """Each raised a bare FileExistsError or RecursionError: the download was not removed and the failure
    did not name the archive."""
    import io
    import tarfile
    import warnings
    import zipfile

    from albert_ner.errors import CheckpointError
    from albert_ner.pretrained.archives import extract_archive

    if kind == "tar member .":
        archive = tmp_path / "evil.tar"
        with tarfile.open(archive, "w") as bundle:
            member = tarfile.TarInfo(".")
            member.size = 1
            bundle.addfile(member, io.BytesIO(b"x"))
    else:
        archive = tmp_path / "evil.zip"
        entries = {"duplicate": [("albert/vocab.txt", b"x"), ("albert/vocab.txt", b"y")],
                   "file then directory": [("albert/vocab.txt", b"x"), ("albert/vocab.txt/x", b"y")],
                   "2,000 levels": [("a/" * 2000 + "f", b"x")]}[kind]
        with zipfile.ZipFile(archive, "w") as bundle, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns of the duplicate name it is asked to write
            for name, data in entries:
                info = zipfile.ZipInfo(name)
                info.external_attr = 0o100644 << 16
                bundle.writestr(info, data)
    with pytest.raises(CheckpointError, match=message):
        extract_archive(archive, tmp_path / "out")
    assert sorted(path.name for path in tmp_path.iterdir()) == [archive.name]


def test_a_zip_written_by_writestr_is_a_regular_archive(tmp_path: Path) -> None:
    """ZipFile.writestr(name, data) stores permission bits without the regular-file type: it was refused."""
    import zipfile

    from albert_ner.pretrained.archives import extract_archive
    from albert_ner.pretrained.checkpoint import find_pretrained

    write_pretrained_directory(tmp_path / "albert_tiny", family="brightmart")
    archive = tmp_path / "albert_tiny.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted((tmp_path / "albert_tiny").iterdir()):
            bundle.writestr(f"albert_tiny/{path.name}", path.read_bytes())
    assert zipfile.ZipFile(archive).infolist()[0].external_attr >> 16 == 0o600
    extract_archive(archive, tmp_path / "out")
    assert find_pretrained(tmp_path / "out").config_path
