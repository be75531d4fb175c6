"""`albert-ner select` on the model trained on the sample corpus: ranking, skips, and the manifest written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from albert_ner.data import read_data_file
from albert_ner.labelling_tasks import check_label_attribute
from albert_ner.prediction import Predictor
from albert_ner.selection import select
from conftest import SAMPLE

SURE = "王芳在南京的清华大学工作。"  # a training template with a training name, place and organisation
UNSURE = "欧阳娜娜随司马懿去了巴黎"  # names, verbs and a place the model never saw, no template


def training_sentence() -> str:
    sentences, _ = read_data_file(SAMPLE / "train.txt")
    return "".join(sentences[0].tokens)


def run_select(model_dir: Path, source: Path, output: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "albert_ner", "select", "--model-dir", str(model_dir),
                           "--input", str(source), "--output", str(output), *extra],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def predictor(trained_job) -> Predictor:
    opt_ml, _ = trained_job
    return Predictor.load(opt_ml.model_dir)


def test_unsure_sentence_ranks_above_a_sure_one(predictor) -> None:
    selection = select(predictor, [SURE, UNSURE], budget=2)
    assert [candidate.text for candidate in selection.chosen] == [UNSURE, SURE]
    sure, unsure = selection.chosen[1].uncertainty, selection.chosen[0].uncertainty
    assert sure < 0.2 < unsure <= 1.0, (sure, unsure)


def test_select_writes_a_ground_truth_manifest_skipping_repeats(trained_job, tmp_path) -> None:
    opt_ml, _ = trained_job
    known = training_sentence()
    source = tmp_path / "unlabelled.txt"
    source.write_text("\n".join([SURE, UNSURE, "", UNSURE, known, "   ", "李娜在成都的华为公司工作。"]) + "\n",
                      encoding="utf-8")
    output = tmp_path / "manifest.jsonl"
    result = run_select(opt_ml.model_dir, source, output, "--budget", "10", "--labelled", str(SAMPLE / "train.txt"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "selected 3 of 3 candidate sentences" in result.stderr
    assert "2 empty, 1 duplicate, 1 already labelled" in result.stderr
    raw = output.read_bytes()
    lines = raw.decode("utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert all(set(record) == {"source"} for record in records)
    assert records[0] == {"source": UNSURE} and {r["source"] for r in records} == {
        SURE, UNSURE, "李娜在成都的华为公司工作。"}
    assert UNSURE.encode("utf-8") in raw, "UTF-8, not \\u escapes"

    # Its own output, a Ground Truth input manifest, is valid input; a budget of 1 keeps the most uncertain.
    again = tmp_path / "again.jsonl"
    result = run_select(opt_ml.model_dir, output, again, "--budget", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    assert again.read_text(encoding="utf-8") == lines[0] + "\n"


def test_pre_annotations_have_ground_truth_ner_shape(trained_job, tmp_path) -> None:
    opt_ml, _ = trained_job
    source = tmp_path / "unlabelled.jsonl"
    source.write_text(json.dumps({"text": SURE}, ensure_ascii=False) + "\n", encoding="utf-8")
    output = tmp_path / "manifest.jsonl"
    result = run_select(opt_ml.model_dir, source, output, "--budget", "5", "--pre-annotate", "ner-round-1")
    assert result.returncode == 0, result.stderr[-2000:]
    (record,) = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert set(record) == {"source", "ner-round-1", "ner-round-1-metadata"}
    annotations = record["ner-round-1"]["annotations"]
    assert annotations["labels"] == [{"label": t} for t in ("LOC", "ORG", "PER", "产品")]
    spans = {(e["label"], SURE[e["startOffset"]:e["endOffset"]]) for e in annotations["entities"]}
    assert spans == {("PER", "王芳"), ("LOC", "南京"), ("ORG", "清华大学")}
    assert all(set(e) == {"label", "startOffset", "endOffset"} for e in annotations["entities"])
    metadata = record["ner-round-1-metadata"]
    assert len(metadata["entities"]) == 3 and all(0 <= e["confidence"] <= 1 for e in metadata["entities"])
    assert metadata["type"] == "groundtruth/text-span" and metadata["human-annotated"] == "no"
    assert metadata["job-name"] == "labeling-job/ner-round-1" and "creation-date" in metadata


def test_bad_arguments_are_named(trained_job, tmp_path) -> None:
    opt_ml, _ = trained_job
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "张三"}\n{"id": 3}\n', encoding="utf-8")
    result = run_select(opt_ml.model_dir, source, tmp_path / "out.jsonl", "--budget", "1")
    assert result.returncode == 2 and f"{source}:2:" in result.stderr and '"source"' in result.stderr
    result = run_select(opt_ml.model_dir, source, tmp_path / "out.jsonl", "--budget", "0")
    assert result.returncode == 2 and "--budget must be a positive" in result.stderr
    result = run_select(opt_ml.model_dir, source, tmp_path / "out.jsonl", "--budget", "1", "--pre-annotate", "a b")
    assert result.returncode == 2 and "label attribute name 'a b'" in result.stderr
    assert not (tmp_path / "out.jsonl").exists()
    assert check_label_attribute("ner-round-1") == "ner-round-1"
