"""pretrained_model from a Hugging Face Hub: the real huggingface_hub client, through `train` as a subprocess,
against a fake Hub on 127.0.0.1 (tests/fake_hub.py) serving a model written by transformers' save_pretrained."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY_HYPERPARAMETERS, TRAIN, OptMl, sample_job
from fake_hub import FakeHub, Repository, repository_from_directory, save_tiny_albert

REPO_ID = "voidful/albert_chinese_tiny"
CARD = "---\nlicense: gpl-3.0\nlanguage: zh\n---\n# albert_chinese_tiny (test copy)\n"
HYPERPARAMETERS = {key: value for key, value in TINY_HYPERPARAMETERS.items()
                   if key not in ("encoder_size", "num_hidden_layers")}
HYPERPARAMETERS.update({"epochs": "1", "max_steps": "4", "pretrained_model": REPO_ID})


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return save_tiny_albert(tmp_path_factory.mktemp("albert_chinese_tiny"), CARD)


@pytest.fixture
def hub(tiny_model):
    fake = FakeHub({REPO_ID: repository_from_directory(tiny_model),
                    "gated/albert": repository_from_directory(tiny_model, gated=True)})
    fake.endpoint = fake.start()
    yield fake
    fake.stop()


def run_train(opt_ml: OptMl, hub_home: Path, endpoint: str, **environ: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HF_")}
    env.update(SAGEMAKER_BASE_DIR=str(opt_ml.base), PYTHONUNBUFFERED="1", HF_HOME=str(hub_home),
               HF_ENDPOINT=endpoint, HF_HUB_DISABLE_TELEMETRY="1", **environ)
    return subprocess.run([sys.executable, str(TRAIN)], env=env, capture_output=True, text=True, timeout=600)


def test_download_train_then_offline_from_the_cache_with_no_request(tmp_path, hub, tiny_model):
    hub_home = tmp_path / "hf"
    online = OptMl(tmp_path / "online")
    sample_job(online, HYPERPARAMETERS)
    result = run_train(online, hub_home, hub.endpoint)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    assert any(request.startswith("GET /api/models/voidful/albert_chinese_tiny/revision/main")
               for request in hub.requests)
    downloaded = {request.rsplit("/", 1)[1] for request in hub.requests if "/resolve/" in request}
    assert downloaded == {"config.json", "vocab.txt", "model.safetensors", "README.md"}  # no tokenizer_config
    assert "loaded 23 encoder tensors" in result.stdout
    assert "skipped" in result.stdout and "predictions." in result.stdout
    assert "licence gpl-3.0" in result.stdout and "WARNING" in result.stdout

    config = json.loads((online.model_dir / "model_config.json").read_text(encoding="utf-8"))
    provenance = config["pretrained"]
    digest = hashlib.sha256((tiny_model / "model.safetensors").read_bytes()).hexdigest()
    assert provenance == {
        "source": "huggingface_hub", "pretrained_model": REPO_ID, "endpoint": hub.endpoint, "repository": REPO_ID,
        "revision": "main", "commit": hub.repositories[REPO_ID].commit, "weights_file": "model.safetensors",
        "weights_sha256": digest, "license": "gpl-3.0"}
    assert digest in result.stdout
    assert config["tagger"]["albert_config"]["hidden_act"] == "gelu_erf"

    hub.requests.clear()
    offline = OptMl(tmp_path / "offline")
    sample_job(offline, HYPERPARAMETERS)
    result = run_train(offline, hub_home, hub.endpoint, HF_HUB_OFFLINE="1")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    assert hub.requests == []
    assert json.loads((offline.model_dir / "model_config.json").read_text())["pretrained"] == provenance


def _cache_files(hub_home: Path) -> list[str]:
    return sorted(str(path.relative_to(hub_home)) for path in hub_home.rglob("*") if path.is_file())


def _failure(opt_ml: OptMl) -> str:
    return opt_ml.failure.read_text(encoding="utf-8").splitlines()[0]


@pytest.mark.parametrize("model, fault, message", [
    ("someone/no_such_albert", None, r"pretrained_model='someone/no_such_albert': no repository someone/"
                                     r"no_such_albert on http://127\.0\.0\.1:\d+ .*check the name, HF_ENDPOINT and "
                                     r"HF_TOKEN"),
    (f"{REPO_ID}@v9", None, rf"pretrained_model='{REPO_ID}@v9': {REPO_ID} has no revision 'v9': give an existing "
                            "branch, tag or commit"),
    ("gated/albert", None, r"pretrained_model='gated/albert': gated/albert is gated: accept its terms .* HF_TOKEN"),
    (REPO_ID, "truncate", rf"pretrained_model='{REPO_ID}': downloading {REPO_ID}@main .* failed: Consistency check "
                          r"failed.*Nothing partial was kept in the cache; run the job again"),
    (REPO_ID, "die", rf"pretrained_model='{REPO_ID}': cannot reach http://127\.0\.0\.1:\d+: .*check the network "
                     "and HF_ENDPOINT"),
])
def test_hub_failures_name_the_model_and_what_to_do(tmp_path, hub, model, fault, message):
    if fault:
        hub.faults["model.safetensors"] = fault
    hub_home = tmp_path / "hf"
    opt_ml = OptMl(tmp_path / "job")
    sample_job(opt_ml, {**HYPERPARAMETERS, "pretrained_model": model})
    result = run_train(opt_ml, hub_home, hub.endpoint)
    assert result.returncode == 1
    assert re.search(message, _failure(opt_ml)), _failure(opt_ml)
    cached = _cache_files(hub_home)
    assert not [name for name in cached if "incomplete" in name or name.endswith("model.safetensors")], cached
    assert not [name for name in cached if "/blobs/" in name and
                (Path(hub_home / name).stat().st_size > 100_000)], cached


def test_offline_without_a_cache_says_what_to_do(tmp_path, hub):
    opt_ml = OptMl(tmp_path / "job")
    sample_job(opt_ml, HYPERPARAMETERS)
    result = run_train(opt_ml, tmp_path / "hf", hub.endpoint, HF_HUB_OFFLINE="1")
    assert result.returncode == 1
    assert "HF_HUB_OFFLINE is set and voidful/albert_chinese_tiny@main is not in the Hugging Face cache" in \
        _failure(opt_ml)
    assert hub.requests == []


def test_channel_and_pretrained_model_together_is_an_error_naming_both(tmp_path, tiny_model):
    opt_ml = OptMl(tmp_path / "job")
    sample_job(opt_ml, HYPERPARAMETERS)
    opt_ml.add_channel("pretrained", *sorted(tiny_model.iterdir()))
    result = run_train(opt_ml, tmp_path / "hf", "http://127.0.0.1:9")
    assert result.returncode == 1
    assert _failure(opt_ml) == (f"pretrained weights given twice: the `pretrained` channel and hyperparameter "
                                f"pretrained_model='{REPO_ID}'; give one")


def download(tmp_path: Path, endpoint: str, name: str, target: Path, **environ: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HF_")}
    env.update(HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT=endpoint, **environ)
    return subprocess.run([sys.executable, "-m", "albert_ner", "download", name, "--to", str(target)], env=env,
                          capture_output=True, text=True, timeout=300)


def test_albert_ner_download_lays_out_a_pretrained_channel(tmp_path, hub, tiny_model):
    target = tmp_path / "upload"
    result = download(tmp_path, hub.endpoint, f"{REPO_ID}@main", target)
    assert result.returncode == 0, result.stderr[-3000:]
    assert {path.name for path in target.iterdir()} == {"config.json", "vocab.txt", "model.safetensors",
                                                        "README.md", "provenance.json"}
    assert not any(path.is_symlink() for path in target.iterdir())
    assert (target / "model.safetensors").read_bytes() == (tiny_model / "model.safetensors").read_bytes()
    again = download(tmp_path, hub.endpoint, REPO_ID, target)
    assert again.returncode == 2 and "exists and is not an empty directory" in again.stderr


def test_pytorch_bin_only_repository_fetches_the_bin(tmp_path, hub, tiny_model):
    files = {name: data for name, data in hub.repositories[REPO_ID].files.items() if name != "model.safetensors"}
    files["pytorch_model.bin"] = b"a pickle"
    hub.repositories["someone/bin_only"] = Repository(files=files)
    result = download(tmp_path, hub.endpoint, "someone/bin_only", tmp_path / "upload")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "upload" / "pytorch_model.bin").read_bytes() == b"a pickle"


def test_a_commit_pinned_revision_in_the_cache_makes_no_request(tmp_path, hub):
    commit = hub.repositories[REPO_ID].commit
    assert download(tmp_path, hub.endpoint, f"{REPO_ID}@{commit}", tmp_path / "first").returncode == 0
    hub.requests.clear()
    result = download(tmp_path, hub.endpoint, f"{REPO_ID}@{commit}", tmp_path / "second")
    assert result.returncode == 0, result.stderr[-3000:]
    assert hub.requests == []


def test_weights_that_do_not_match_the_etag_are_removed_from_the_cache(tmp_path, hub):
    hub.faults["model.safetensors"] = "corrupt"
    result = download(tmp_path, hub.endpoint, REPO_ID, tmp_path / "upload")
    assert result.returncode == 2
    assert re.search(rf"pretrained_model='{REPO_ID}': model.safetensors of {REPO_ID} does not match the Hub's etag "
                     r"[0-9a-f]{64} \(found [0-9a-f]{64}\); it was removed from the cache", result.stderr)
    assert not [path for path in (tmp_path / "hf").rglob("*") if path.is_file() and path.stat().st_size > 100_000]
    assert not (tmp_path / "upload").exists()


def test_a_gated_repository_downloads_with_hf_token(tmp_path, hub):
    result = download(tmp_path, hub.endpoint, "gated/albert", tmp_path / "upload", HF_TOKEN="hf_test_token")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "upload" / "model.safetensors").is_file()
