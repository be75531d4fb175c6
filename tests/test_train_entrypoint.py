"""The `train` program run as SageMaker runs it: a subprocess against a temporary /opt/ml tree."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO, SAMPLE, TINY_HYPERPARAMETERS, OptMl, sample_job

MODEL_FILES = {"model.weights.h5", "model_config.json", "label_map.json", "vocab.txt",
               "validation_report.json", "validation_report.txt", "test_report.json", "test_report.txt"}
METRIC_LINE = re.compile(r"epoch=(\d+) step=(\d+) val_precision=([0-9.]+) val_recall=([0-9.]+) val_f1=([0-9.]+) "
                         r"eval_s=([0-9.]+)")
PROGRESS_LINE = re.compile(r"epoch=\d+ step=\d+/\d+ train_loss=([0-9.]+) lr=\S+ sentences_per_sec=([0-9.]+) "
                           r"chars_per_sec=\d+ data_ms=([0-9.]+) step_ms=([0-9.]+) ")


@pytest.fixture(scope="module")
def trained(trained_job: tuple[OptMl, subprocess.CompletedProcess]) -> tuple[OptMl, subprocess.CompletedProcess]:
    return trained_job


def test_train_writes_model_reports_and_logs(trained) -> None:
    opt_ml, result = trained
    assert MODEL_FILES <= {path.name for path in opt_ml.model_dir.iterdir()}
    data = {path.name for path in opt_ml.output_data_dir.iterdir()}
    assert {"training.log", "test_report.json", "test_report.txt", "test_predictions.jsonl",
            "validation_report.json", "tensorboard", "report.html"} <= data
    assert not [name for name in data if "partial" in name]
    assert not opt_ml.failure.exists()
    assert "entities" in (opt_ml.output_data_dir / "training.log").read_text(encoding="utf-8")


def test_one_metrics_line_per_evaluation_and_a_real_f1(trained) -> None:
    opt_ml, result = trained
    metrics = METRIC_LINE.findall(result.stdout)
    assert [int(epoch) for epoch, *_ in metrics] == [1, 2, 3, 4]
    # The sample corpus is templated: a model that learned anything scores high on it.
    report = json.loads((opt_ml.model_dir / "test_report.json").read_text())
    assert report["entity_level_strict"]["micro_avg"]["f1"] > 0.9
    assert set(report["entity_level_strict"]["per_type"]) == {"LOC", "ORG", "PER", "产品"}
    assert re.search(r"test_precision=[0-9.]+ test_recall=[0-9.]+ test_f1=[0-9.]+", result.stdout)


def test_log_says_where_the_time_goes_and_train_loss_is_one_quantity(trained) -> None:
    _, result = trained
    progress = PROGRESS_LINE.findall(result.stdout)
    total = int(re.search(r"(\d+) steps in all", result.stdout).group(1))
    assert len(progress) == total // 10 + (total % 10 > 0)  # log_every_steps 10, and the last step
    assert all(float(sentences) > 0 and float(step_ms) > 0 and float(data_ms) >= 0
               for _, sentences, data_ms, step_ms in progress)
    # The metric regex train_loss=... must catch the progress lines' running mean and nothing else.
    assert len(re.findall(r"train_loss=", result.stdout)) == len(progress)
    assert re.search(r"saved checkpoint \S+ \(epoch \d+, batch \d+, step \d+\) checkpoint_s=[0-9.]+", result.stdout)
    assert re.search(r"model written to \S+ in [0-9.]+ s \(SavedModel export [0-9.]+ s\)", result.stdout)
    traced = re.search(r"the training step was traced (\d+) time\(s\)", result.stdout)
    assert traced and int(traced.group(1)) >= 1


def test_start_of_log_names_versions_devices_and_data(trained) -> None:
    _, result = trained
    assert "TensorFlow 2.21" in result.stdout and "devices: CPU" in result.stdout
    assert "replica(s)" in result.stdout and '"learning_rate": 0.001' in result.stdout
    assert re.search(r"data training: \d+ sentences, \d+ characters, entities \{.*\}, \[UNK\] rate", result.stdout)


def test_test_sentences_are_evaluated_whole(trained) -> None:
    opt_ml, _ = trained
    test_texts = [line.split()[0] for line in (SAMPLE / "test.txt").read_text(encoding="utf-8").split("\n\n")
                  if line.strip()]
    rows = [json.loads(line) for line in (opt_ml.output_data_dir / "test_predictions.jsonl").open(encoding="utf-8")]
    assert len(rows) == len(test_texts) == 100
    longest = max(rows, key=lambda row: len(row["text"]))
    assert len(longest["text"]) > int(TINY_HYPERPARAMETERS["max_seq_length"])  # windowed, yet whole
    for row in rows:
        assert all(0 <= start < end <= len(row["text"]) for start, end, _ in row["predicted"])


def test_cli_predicts_entities_from_the_saved_model(trained, tmp_path) -> None:
    opt_ml, _ = trained
    result = subprocess.run(
        [sys.executable, "-m", "albert_ner", "predict", "--model-dir", str(opt_ml.model_dir),
         "--text", "张伟在北京的清华大学工作。", "--text", ""],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr
    first, second = [json.loads(line) for line in result.stdout.splitlines()]
    assert first["text"] == "张伟在北京的清华大学工作。"
    assert {(e["type"], e["start"], e["end"], e["text"]) for e in first["entities"]} == {
        ("PER", 0, 2, "张伟"), ("LOC", 3, 5, "北京"), ("ORG", 6, 10, "清华大学")}
    assert second == {"text": "", "entities": []}


def test_cli_evaluates_labelled_files_with_the_saved_model(trained, tmp_path) -> None:
    opt_ml, _ = trained
    output = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "albert_ner", "evaluate", "--model-dir", str(opt_ml.model_dir),
         str(SAMPLE / "test.txt"), "--output", str(output)],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^micro avg\s+[0-9.]+\s+[0-9.]+\s+[0-9.]+\s+318$", result.stdout, re.M), result.stdout
    saved = json.loads(output.read_text())
    expected = json.loads((opt_ml.model_dir / "test_report.json").read_text())
    assert saved["entity_level_strict"] == expected["entity_level_strict"]


@pytest.mark.parametrize("dialect", [
    {"use_crf": "True", "max_steps": "None", "entity_types": "['LOC', 'ORG', 'PER', '产品']",
     "sagemaker_program": "train", "sagemaker_submit_directory": "s3://bucket/x.tar.gz",
     "_tuning_objective_metric": "val_f1"},
    {"use_crf": "true", "max_steps": "null", "entity_types": '["LOC", "ORG", "PER", "产品"]'},
], ids=["sdk-v2", "sdk-v3"])
def test_both_sdk_hyperparameter_dialects_train(opt_ml: OptMl, dialect: dict) -> None:
    sample_job(opt_ml, {**TINY_HYPERPARAMETERS, "epochs": "1", **dialect})
    result = opt_ml.run_train()
    assert result.returncode == 0, result.stdout[-3000:]
    assert '"entity_types": ["LOC", "ORG", "PER", "产品"]' in result.stdout
    assert (opt_ml.model_dir / "model.weights.h5").is_file()


def failure_reason(opt_ml: OptMl, result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    assert opt_ml.failure.is_file(), result.stdout[-2000:]
    text = opt_ml.failure.read_text(encoding="utf-8")
    assert "Traceback" in text  # the details follow the plain reason
    return text.splitlines()[0]


def test_unknown_hyperparameter_fails_naming_the_key(opt_ml: OptMl) -> None:
    sample_job(opt_ml, {**TINY_HYPERPARAMETERS, "learning_rat": "0.1"})
    reason = failure_reason(opt_ml, opt_ml.run_train())
    assert reason == "unknown hyperparameter 'learning_rat'; did you mean 'learning_rate'?"


def test_bad_hyperparameter_value_fails_naming_key_and_value(opt_ml: OptMl) -> None:
    sample_job(opt_ml, {**TINY_HYPERPARAMETERS, "batch_size": "many"})
    assert failure_reason(opt_ml, opt_ml.run_train()) == "hyperparameter batch_size='many': expected an integer"


def test_malformed_data_line_fails_naming_file_and_line(opt_ml: OptMl) -> None:
    opt_ml.write_hyperparameters(TINY_HYPERPARAMETERS)
    channel = opt_ml.add_channel("training", contents={"bad.txt": "张 B-PER\n伟 I-PER\n在\n北 B-LOC\n"})
    reason = failure_reason(opt_ml, opt_ml.run_train())
    assert reason.startswith(f"{channel / 'bad.txt'}:3: ")
    assert not opt_ml.model_dir.exists() or not any(opt_ml.model_dir.iterdir())


@pytest.mark.parametrize("name, content, problem", [
    ("resourceconfig.json", "{not json", "not valid JSON"),
    ("resourceconfig.json", '{"current_host": "algo-1", "hosts": "algo-1"}', "hosts must be a list of host names"),
    ("inputdataconfig.json", '{"training": {"TrainingInputMode": "File"', "not valid JSON"),
    ("inputdataconfig.json", '{"training": {"TrainingInputMode": "Stream"}}',
     "channel 'training' has TrainingInputMode"),
])
def test_malformed_sagemaker_config_writes_the_failure_file(opt_ml: OptMl, name: str, content: str,
                                                            problem: str) -> None:
    """Reading the environment happens inside the failure handling: the job says which file is wrong."""
    sample_job(opt_ml, TINY_HYPERPARAMETERS)
    config = opt_ml.base / "input" / "config" / name
    config.write_text(content, encoding="utf-8")
    result = opt_ml.run_train()
    reason = failure_reason(opt_ml, result)
    assert reason.startswith(f"{config}: {problem}"), reason
    assert "training failed" in result.stdout and (opt_ml.output_data_dir / "training.log").is_file()


def test_missing_training_channel_is_explained(opt_ml: OptMl) -> None:
    opt_ml.write_hyperparameters(TINY_HYPERPARAMETERS)
    opt_ml.add_channel("validation", SAMPLE / "validation.jsonl")
    reason = failure_reason(opt_ml, opt_ml.run_train())
    assert reason.startswith("no `training` channel") and "validation" in reason


def test_albert_ner_train_takes_the_base_dir_as_an_argument(opt_ml: OptMl, monkeypatch: pytest.MonkeyPatch) -> None:
    """``albert-ner train --base-dir`` runs the job on that tree without setting SAGEMAKER_BASE_DIR in
    the process environment (which a later job in the same process would inherit)."""
    from albert_ner.cli import main

    monkeypatch.delenv("SAGEMAKER_BASE_DIR", raising=False)
    opt_ml.write_hyperparameters(TINY_HYPERPARAMETERS)
    opt_ml.add_channel("validation", SAMPLE / "validation.jsonl")
    assert main(["train", "--base-dir", str(opt_ml.base)]) == 1
    assert opt_ml.failure.read_text(encoding="utf-8").startswith("no `training` channel")
    assert "SAGEMAKER_BASE_DIR" not in os.environ


@pytest.mark.parametrize("family", ["brightmart", "google"])
def test_pretrained_channel_is_loaded_and_fine_tuned(opt_ml: OptMl, family: str) -> None:
    from albert_fixtures import write_pretrained_directory

    config = write_pretrained_directory(opt_ml.add_channel("pretrained") / f"albert_tiny_{family}", family,
                                        hidden_size=48, num_attention_heads=4, intermediate_size=96)
    sample_job(opt_ml, {**TINY_HYPERPARAMETERS, "epochs": "1", "max_steps": "5",
                        "num_hidden_layers": "null"})
    result = opt_ml.run_train()
    assert result.returncode == 0, result.stdout[-3000:]
    assert re.search(rf"pretrained ALBERT: .* \({family} family, hidden 48, {config['num_hidden_layers']} layers\)",
                     result.stdout)
    assert re.search(r"loaded \d+ encoder tensors from .*albert_model.ckpt", result.stdout), result.stdout[-3000:]
    saved_vocab = (opt_ml.model_dir / "vocab.txt").read_text(encoding="utf-8").split("\n")
    assert saved_vocab[:2] == ["[PAD]", "[unused1]"] and len(saved_vocab) - 1 == config["vocab_size"]
    # A job that max_steps ends still writes its report page, naming the encoder's origin.
    page = " ".join((opt_ml.output_data_dir / "report.html").read_text(encoding="utf-8").split())
    assert "stopped: max_steps=5 reached" in page
    assert re.search(rf"pretrained ALBERT \S*albert_model.ckpt \({family} family, hidden 48", page)


def test_pretrained_family_mismatch_fails_naming_the_variable(opt_ml: OptMl) -> None:
    from albert_fixtures import write_pretrained_directory

    directory = opt_ml.add_channel("pretrained")
    write_pretrained_directory(directory, "google", hidden_size=48, num_attention_heads=4, intermediate_size=96)
    brightmart = json.loads((directory / "albert_config.json").read_text())
    brightmart.pop("num_hidden_groups")
    brightmart["ln_type"] = "postln"
    (directory / "albert_config.json").write_text(json.dumps(brightmart))
    sample_job(opt_ml, {**TINY_HYPERPARAMETERS, "num_hidden_layers": "null"})
    reason = failure_reason(opt_ml, opt_ml.run_train())
    assert re.search(r"bert/embeddings/\S+: expected \(.*\), found \(.*\)", reason), reason
    assert "Google-format" in reason


def test_entity_types_missing_a_type_of_the_data_fails_naming_both(opt_ml: OptMl) -> None:
    sample_job(opt_ml, {**TINY_HYPERPARAMETERS, "entity_types": '["PER", "LOC"]'})
    reason = failure_reason(opt_ml, opt_ml.run_train())
    assert reason == "hyperparameter entity_types=['PER', 'LOC']: the data also has ['ORG', '产品']"
    assert not opt_ml.model_dir.exists() or not any(opt_ml.model_dir.iterdir())


def test_max_seq_length_beyond_the_pretrained_positions_fails_naming_both(opt_ml: OptMl) -> None:
    from albert_fixtures import write_pretrained_directory

    write_pretrained_directory(opt_ml.add_channel("pretrained"), "brightmart", max_position_embeddings=16)
    sample_job(opt_ml, {**TINY_HYPERPARAMETERS, "max_seq_length": "32", "num_hidden_layers": "null"})
    reason = failure_reason(opt_ml, opt_ml.run_train())
    assert reason == "hyperparameter max_seq_length=32: the encoder has only 16 positions"
