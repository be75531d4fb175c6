"""The ONNX runtimes against the TensorFlow Predictor, the runtime choice, and serving without TensorFlow.

Float32 ONNX must give exactly the TensorFlow Predictor's entities, with scores within 1e-5, on the
random 32-token-window tagger of test_export.py (with and without a dictionary, at temperature 1 and at a
calibrated one), and on the shared tiny model `train` wrote. Int8 is held to a bound on the tiny model.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from albert_ner.errors import AlbertNerError, ModelDirectoryError
from albert_ner.evaluation import evaluate
from albert_ner.model_directory import ONNX_AGREEMENT_FILE, ONNX_DIRECTORY, ONNX_FLOAT32_FILE, ONNX_INT8_FILE
from albert_ner.prediction import Predictor
from albert_ner.readers.conll import read_conll
from albert_ner.runtimes import choice
from albert_ner.runtimes.onnx_export import export_onnx
from conftest import REPO, SAMPLE
from test_export import ALONE, EDGE_CASES, random_tagger, sample_texts
from test_serve import Server, entities

TEXTS = [list(text) for text in sample_texts() + EDGE_CASES + ALONE]


@pytest.fixture(scope="module", params=[("no lexicon", 1.0), ("lexicon", 1.0), ("lexicon", 1.7)],
                ids=["no lexicon", "lexicon", "lexicon, temperature 1.7"])
def random_model_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    kind, temperature = request.param
    predictor = random_tagger(kind == "lexicon", temperature)
    model_dir = tmp_path_factory.mktemp("onnx") / "model"
    predictor.save(model_dir)
    # From the directory, as serving loads it (the dictionary and the temperature read back from their files).
    export_onnx(Predictor.load(model_dir, runtime="tensorflow"), model_dir)
    return model_dir


def compare(expected: list, predicted: list) -> tuple[int, float]:
    """Sentences with identical tags and entities, and the largest entity or sentence score difference."""
    same, largest = 0, 0.0
    for ours, theirs in zip(predicted, expected, strict=True):
        if ours.tags == theirs.tags and ours.entities == theirs.entities:
            same += 1
            differences = [abs(a - b) for a, b in zip(ours.scores, theirs.scores, strict=True)]
            largest = max([largest, abs(ours.sentence_score - theirs.sentence_score), *differences])
    return same, largest


def test_float32_onnx_equals_the_tensorflow_predictor(random_model_dir: Path) -> None:
    reference = Predictor.load(random_model_dir, runtime="tensorflow").predict(TEXTS)
    onnx = Predictor.load(random_model_dir, runtime="onnx")
    assert type(onnx.core).__name__ == "OnnxCore"
    same, largest = compare(reference, onnx.predict(TEXTS))
    assert same == len(TEXTS)
    assert largest <= 1e-5
    # Tags alone (no scores) take the same path through the graph.
    assert onnx.predict_tags(TEXTS) == [prediction.tags for prediction in reference]
    assert any(prediction.entities for prediction in reference)  # the comparison covers entities


def test_the_recurrence_converts_to_onnx_lstm_operators_not_loops(random_model_dir: Path) -> None:
    """Each LSTM direction is one ONNX ``LSTM`` node in both copies (int8 quantizes the matrix products
    only): as a loop of small operators per step the BiLSTM ran 1.4x slower (bench/README.md)."""
    import onnx

    for name in (ONNX_FLOAT32_FILE, ONNX_INT8_FILE):
        types = [node.op_type for node in onnx.load(random_model_dir / name).graph.node]
        assert types.count("LSTM") == 2, name


def test_one_character_and_single_text_batches(random_model_dir: Path) -> None:
    reference = Predictor.load(random_model_dir, runtime="tensorflow", batch_size=1)
    onnx = Predictor.load(random_model_dir, runtime="onnx", batch_size=1)
    texts = [list(text) for text in ALONE]
    assert compare(reference.predict(texts), onnx.predict(texts))[0] == len(texts)


def test_the_export_records_what_it_checked(random_model_dir: Path) -> None:
    agreement = json.loads((random_model_dir / ONNX_AGREEMENT_FILE).read_text(encoding="utf-8"))
    float32, int8 = agreement["runtimes"]["onnx"], agreement["runtimes"]["onnx-int8"]
    assert float32["holds"] is True and float32["identical_entities"] == float32["sentences"] == 200
    assert float32["largest_score_difference"] <= 1e-5
    # Without gold sentences int8's F1 cannot be measured: it is not a default, only asked for.
    assert int8["holds"] is None and "f1" not in int8
    assert agreement["checked_on"] == "random texts over the vocabulary"
    assert choice.choose_runtime(random_model_dir) == "onnx"
    assert {path.name for path in (random_model_dir / ONNX_DIRECTORY).iterdir()} == {
        Path(name).name for name in (ONNX_FLOAT32_FILE, ONNX_INT8_FILE, ONNX_AGREEMENT_FILE)}


def test_runtime_choice(random_model_dir: Path, tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setenv(choice.RUNTIME_VARIABLE, "tensorflow")
    assert Predictor.load(random_model_dir).core.runtime == "tensorflow"
    assert Predictor.load(random_model_dir, runtime="onnx-int8").core.runtime == "onnx-int8"  # the flag wins
    monkeypatch.setenv(choice.RUNTIME_VARIABLE, "tflite")
    with pytest.raises(AlbertNerError, match="ALBERT_NER_RUNTIME='tflite' is not a runtime; expected one of "
                                             "tensorflow, onnx, onnx-int8"):
        Predictor.load(random_model_dir)
    monkeypatch.delenv(choice.RUNTIME_VARIABLE)

    # int8 is the default once its agreement holds, float32 when neither file is eligible... TensorFlow.
    agreement = json.loads((random_model_dir / ONNX_AGREEMENT_FILE).read_text(encoding="utf-8"))
    copy = tmp_path / "copy"
    shutil.copytree(random_model_dir, copy)
    agreement["runtimes"]["onnx-int8"]["holds"] = True
    (copy / ONNX_AGREEMENT_FILE).write_text(json.dumps(agreement), encoding="utf-8")
    assert choice.choose_runtime(copy) == "onnx-int8"
    agreement["runtimes"]["onnx-int8"]["holds"] = agreement["runtimes"]["onnx"]["holds"] = False
    (copy / ONNX_AGREEMENT_FILE).write_text(json.dumps(agreement), encoding="utf-8")
    assert choice.choose_runtime(copy) == "tensorflow"

    # An older model directory: TensorFlow, said once; asking for ONNX names the missing file.
    shutil.rmtree(copy / ONNX_DIRECTORY)
    with caplog.at_level(logging.INFO, logger="albert_ner.runtimes.choice"):
        assert Predictor.load(copy).core.runtime == "tensorflow"
        assert Predictor.load(copy).core.runtime == "tensorflow"
    said = [record.getMessage() for record in caplog.records if "running on TensorFlow" in record.getMessage()]
    assert len(said) == 1 and "albert-ner export --format onnx" in said[0]
    with pytest.raises(ModelDirectoryError, match="the runtime onnx needs onnx/tagger.onnx, which the model "
                                                  "directory does not have"):
        Predictor.load(copy, runtime="onnx")


def test_a_corrupt_onnx_file_names_it(random_model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(random_model_dir, copy)
    (copy / ONNX_FLOAT32_FILE).write_bytes(b"not a model")
    with pytest.raises(ModelDirectoryError, match="onnx/tagger.onnx cannot be loaded by ONNX Runtime"):
        Predictor.load(copy, runtime="onnx")


@pytest.fixture(scope="module")
def tiny_model(trained_job) -> Path:
    opt_ml, result = trained_job
    assert "ONNX export in" in result.stderr + result.stdout
    return opt_ml.model_dir


def test_train_writes_onnx_copies_that_agree(tiny_model: Path) -> None:
    """The shared tiny model: float32 exact on the test sentences; int8 within a bound of its F1."""
    test = read_conll(SAMPLE / "test.txt")[0]
    tokens = [list(sentence.tokens) for sentence in test]
    reference = Predictor.load(tiny_model, runtime="tensorflow").predict(tokens)
    float32 = Predictor.load(tiny_model, runtime="onnx").predict(tokens)
    int8 = Predictor.load(tiny_model, runtime="onnx-int8").predict(tokens)
    same, largest = compare(reference, float32)
    assert same == len(tokens) and largest <= 1e-5
    f1 = {name: evaluate(test, [p.entities for p in predictions]).f1
          for name, predictions in (("tensorflow", reference), ("int8", int8))}
    assert f1["tensorflow"] > 0.3  # the model has learnt something for int8 to lose
    assert f1["int8"] >= f1["tensorflow"] - 0.02, f1
    agreement = json.loads((tiny_model / ONNX_AGREEMENT_FILE).read_text(encoding="utf-8"))
    assert agreement["checked_on"] == "validation sentences"
    measured = agreement["runtimes"]["onnx-int8"]
    assert measured["holds"] == (measured["f1_loss"] <= 0.003 and measured["ece_change"] <= 0.01)
    assert choice.choose_runtime(tiny_model) == ("onnx-int8" if measured["holds"] else "onnx")


def albert_ner(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "albert_ner", *args], capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, **(env or {})))


def test_albert_ner_export_onnx_and_the_runtime_flag(tiny_model: Path, tmp_path: Path) -> None:
    older = tmp_path / "older"
    shutil.copytree(tiny_model, older)
    shutil.rmtree(older / ONNX_DIRECTORY)
    result = albert_ner("export", "--format", "onnx", "--model-dir", str(older),
                        "--validation", str(SAMPLE / "validation.jsonl"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == str(older / ONNX_DIRECTORY)
    exported = json.loads((older / ONNX_AGREEMENT_FILE).read_text(encoding="utf-8"))
    assert exported["runtimes"]["onnx"]["holds"] is True and "f1_loss" in exported["runtimes"]["onnx-int8"]

    outputs = {}
    for runtime in ("tensorflow", "onnx", "onnx-int8"):
        result = albert_ner("predict", "--model-dir", str(older), "--runtime", runtime, "--input",
                            str(SAMPLE / "validation.jsonl"))
        assert result.returncode == 0, result.stderr[-3000:]
        outputs[runtime] = [json.loads(line) for line in result.stdout.splitlines()]
    assert [[(e["start"], e["end"], e["type"]) for e in line["entities"]] for line in outputs["onnx"]] == \
        [[(e["start"], e["end"], e["type"]) for e in line["entities"]] for line in outputs["tensorflow"]]
    result = albert_ner("evaluate", "--model-dir", str(older), str(SAMPLE / "test.txt"),
                        env={choice.RUNTIME_VARIABLE: "onnx-int8"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "micro avg" in result.stdout
    result = albert_ner("predict", "--model-dir", str(older), "--runtime", "openvino", "--text", "张三")
    assert result.returncode == 2 and "invalid choice: 'openvino'" in result.stderr
    result = albert_ner("export", "--format", "onnx", str(older), "--quantization", "static")
    assert result.returncode == 2 and "needs --calibration" in result.stderr
    assert exported["quantization"] == "dynamic"  # the default


def test_static_int8_answers_do_not_depend_on_the_batch(tiny_model: Path, tmp_path: Path) -> None:
    """Static quantization (calibrated on training sentences) gives a text the same answer alone as in any
    batch; dynamic quantization's activation ranges are each batch's own (train's default), and do not."""
    agreement = json.loads((tiny_model / ONNX_AGREEMENT_FILE).read_text(encoding="utf-8"))
    assert agreement["quantization"] == "dynamic"
    dynamic, static = tiny_model, tmp_path / "static"
    shutil.copytree(tiny_model, static)
    result = albert_ner("export", "--format", "onnx", str(static), "--quantization", "static",
                        "--calibration", str(SAMPLE / "train.txt"), "--validation", str(SAMPLE / "validation.jsonl"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((static / ONNX_AGREEMENT_FILE).read_text(encoding="utf-8"))["quantization"] == "static"
    assert "QuantizeLinear" in (static / ONNX_INT8_FILE).read_bytes().decode("latin-1")  # QDQ nodes
    text = list("张三在北京大学工作。")
    crowd = [list(line) for line in sample_texts()[:40]]
    scores = {}
    for name, model_dir in (("static", static), ("dynamic", dynamic)):
        predictor = Predictor.load(model_dir, runtime="onnx-int8")
        alone = predictor.predict([text])[0]
        shared = predictor.predict([*crowd, text])[-1]
        assert alone.entities == shared.entities
        scores[name] = max(abs(a - b) for a, b in zip(alone.scores, shared.scores, strict=True))
    assert scores["static"] <= 1e-6 < scores["dynamic"], scores


BLOCKER = """raise ImportError("{name} is not installed in this test (the ONNX serving image has none)")\n"""


def test_serve_without_tensorflow(tiny_model: Path, tmp_path: Path) -> None:
    """`serve` on a Python where TensorFlow, Keras and tf2onnx cannot be imported, over real HTTP."""
    blocked = tmp_path / "blocked"
    for name in ("tensorflow", "keras", "tf2onnx"):
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(BLOCKER.format(name=name))
    base = tmp_path / "opt_ml"
    shutil.copytree(tiny_model, base / "model")
    server = Server(base, {"PYTHONPATH": os.pathsep.join([str(blocked), str(REPO / "container" / "ner")])})
    try:
        server.wait_ready()
        status, _, body = server.invoke(json.dumps({"text": "张三在北京大学工作。"}, ensure_ascii=False))
        assert status == 200, body
        expected = Predictor.load(tiny_model, runtime="tensorflow").predict([list("张三在北京大学工作。")])[0]
        assert [(e["start"], e["end"], e["type"]) for e in entities(body)] == \
            [(entity.start, entity.end, entity.type) for entity in expected.entities]
        assert "serving on the onnx" in server.output()
    finally:
        server.stop()
    check = subprocess.run([sys.executable, "-c", "import tensorflow"], capture_output=True, text=True,
                           env=dict(os.environ, PYTHONPATH=str(blocked)))
    assert "is not installed in this test" in check.stderr  # the block is real


def test_serve_on_tensorflow_when_asked(tiny_model: Path, tmp_path: Path) -> None:
    base = tmp_path / "opt_ml"
    shutil.copytree(tiny_model, base / "model")
    server = Server(base, {choice.RUNTIME_VARIABLE: "tensorflow"})
    try:
        server.wait_ready()
        status, _, body = server.invoke("张三在北京大学工作。", content_type="text/plain")
        assert status == 200, body
        assert "serving on the tensorflow runtime" in server.output()
    finally:
        server.stop()


def test_the_exact_gelu_of_transformers_checkpoints_converts(tmp_path: Path) -> None:
    """tf2onnx has no ``Erfc`` (TensorFlow's exact GELU): it converts as ``1 - Erf``."""
    import keras

    from albert_ner.modeling.albert import AlbertConfig
    from albert_ner.modeling.tagger import AlbertTagger, build_model
    from albert_ner.tag_schemes import LabelMap
    from albert_ner.tokenization import CharTokenizer, Vocab

    keras.utils.set_random_seed(3)
    vocab = Vocab.build([list("张三在北京大学工作李四去了上海")])
    labels = LabelMap(["LOC", "PER"], "bioes")
    config = AlbertConfig(vocab_size=len(vocab), embedding_size=16, hidden_size=32, num_hidden_layers=1,
                          num_attention_heads=2, intermediate_size=64, family="brightmart", hidden_act="gelu_erf")
    tagger = AlbertTagger(config, len(labels), cls_id=vocab.cls_id, sep_id=vocab.sep_id, pad_id=vocab.pad_id,
                          lstm_units=8, allowed=labels.allowed_transitions())
    build_model(tagger, vocab.pad_id)
    Predictor.of_model(tagger, CharTokenizer(vocab), labels, 16).save(tmp_path)
    export_onnx(Predictor.load(tmp_path, runtime="tensorflow"), tmp_path)
    float32 = json.loads((tmp_path / ONNX_AGREEMENT_FILE).read_text(encoding="utf-8"))["runtimes"]["onnx"]
    assert float32["holds"] is True and float32["identical_entities"] == 200
