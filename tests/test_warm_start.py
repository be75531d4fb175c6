"""The `model` channel: `train` continues from a model it wrote before, given as the directory or as the
model.tar.gz SageMaker packs it into, and refuses, naming the conflict, what the model cannot continue with."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest

from albert_ner.model_directory import model_version
from albert_ner.prediction import Predictor
from conftest import SAMPLE, TINY_HYPERPARAMETERS, OptMl, sample_job
from test_serve import sample_texts


def pack(model_dir: Path, archive: Path) -> Path:
    """model.tar.gz as SageMaker writes it: the model directory's files at the archive's top."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as packed:
        for path in sorted(model_dir.iterdir()):
            packed.add(path, arcname=path.name)
    return archive


def test_a_job_continues_from_the_packed_model_of_an_earlier_job(trained_job, tmp_path) -> None:
    """With learning rates too small to move a weight, one step from the earlier model leaves a model that
    tags exactly as it did: the weights were the earlier model's, not a fresh initialisation."""
    earlier, _ = trained_job
    opt_ml = OptMl(tmp_path / "opt_ml")
    sample_job(opt_ml, {**TINY_HYPERPARAMETERS, "max_steps": "1", "learning_rate": "1e-12",
                        "head_learning_rate": "1e-12", "weight_decay": "0", "lstm_units": "8", "tag_scheme": "bio"})
    pack(earlier.model_dir, opt_ml.base / "input" / "data" / "model" / "model.tar.gz")

    result = opt_ml.run_train()

    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    version = model_version(earlier.model_dir)
    assert f"warm start: albert-ner model {version} from the `model` channel" in log
    assert "the model fixes lstm_units=32" in log and "tag_scheme=bioes" in log
    texts = [list(text) for text in sample_texts()]
    before = Predictor.load(earlier.model_dir, runtime="tensorflow").predict_tags(texts)
    after = Predictor.load(opt_ml.model_dir, runtime="tensorflow").predict_tags(texts)
    assert after == before
    config = json.loads((opt_ml.model_dir / "model_config.json").read_text(encoding="utf-8"))
    assert config["tagger"]["lstm_units"] == 32, "the architecture is the earlier model's"


def _failing_job(tmp_path: Path, trained_job, channel: str = "directory", hyperparameters: dict | None = None,
                 extra_training: str | None = None) -> str:
    earlier, _ = trained_job
    opt_ml = OptMl(tmp_path / "opt_ml")
    sample_job(opt_ml, {**TINY_HYPERPARAMETERS, "max_steps": "1", **(hyperparameters or {})})
    model_channel = opt_ml.base / "input" / "data" / "model"
    if channel == "directory":
        shutil.copytree(earlier.model_dir, model_channel / "model")
    elif channel == "empty":
        model_channel.mkdir(parents=True)
        (model_channel / "notes.txt").write_text("no model here", encoding="utf-8")
    elif channel == "lexicon":
        shutil.copytree(earlier.model_dir, model_channel)
        opt_ml.add_channel("lexicon", contents={"words.txt": "北京 ns\n"})
    if extra_training is not None:
        opt_ml.add_channel("training", contents={"extra.jsonl": extra_training})
    result = opt_ml.run_train()
    assert result.returncode != 0
    return opt_ml.failure.read_text(encoding="utf-8").splitlines()[0]


@pytest.mark.parametrize(("case", "expected"), [
    ({"extra_training": '{"text": "阿司匹林", "entities": [[0, 4, "药物"]]}\n'},
     "the training data has entity types the `model` channel's model has no tags for: 药物"),
    ({"hyperparameters": {"pretrained_dir": str(SAMPLE)}},
     "a `model` channel and a pretrained encoder"),
    ({"hyperparameters": {"entity_types": '["PER"]'}}, "hyperparameter entity_types=['PER']"),
    ({"channel": "empty"}, "the `model` channel holds neither a model directory"),
    ({"channel": "lexicon"}, "a `lexicon` channel with a `model` channel"),
])
def test_what_the_model_cannot_continue_with_is_refused_by_name(trained_job, tmp_path, case, expected) -> None:
    assert expected in _failing_job(tmp_path, trained_job, **case)
