"""The Python Predictor on a small random model: batches of any shape, and `albert-ner predict` streaming."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import keras
import pytest

from albert_ner.cli import stream_predictions
from albert_ner.modeling.albert import AlbertConfig
from albert_ner.modeling.tagger import AlbertTagger
from albert_ner.prediction import Predictor, build_model
from albert_ner.tag_schemes import LabelMap
from albert_ner.tokenization import CharTokenizer, Vocab


def random_predictor(texts: list[str], max_seq_length: int = 32, seed: int = 3) -> Predictor:
    keras.utils.set_random_seed(seed)
    vocab = Vocab.build([list(text) for text in texts])
    label_map = LabelMap(["LOC", "ORG", "PER"], "bioes")
    config = AlbertConfig(vocab_size=len(vocab), embedding_size=32, hidden_size=64, num_hidden_layers=1,
                          num_attention_heads=4, intermediate_size=128, family="brightmart")
    model = AlbertTagger(config, len(label_map), cls_id=vocab.cls_id, sep_id=vocab.sep_id, pad_id=vocab.pad_id,
                         lstm_units=16, allowed=label_map.allowed_transitions())
    build_model(model, vocab.pad_id)
    return Predictor(model, CharTokenizer(vocab), label_map, max_seq_length=max_seq_length, batch_size=4)


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return random_predictor(["张三在北京大学工作。", "李四去了上海。"])


def test_batches_of_one_character_windows(predictor) -> None:
    """Sorted by length, the first batches hold only empty and one-character windows."""
    texts = ["", "a", "张", "。", "", "三", "李", "x" * 40, "张三"]
    tags = predictor.predict_tags([list(text) for text in texts])
    assert [len(row) for row in tags] == [len(text) for text in texts]
    assert predictor.predict_tags([["a"]]) == [tags[1]]


def test_stream_predictions_reads_text_and_json_lines_in_order(predictor, tmp_path) -> None:
    plain = tmp_path / "in.txt"
    plain.write_text("张三在北京大学工作。\r\n\n李四去了上海。\n", encoding="utf-8")
    lines = tmp_path / "in.jsonl"
    lines.write_text('"张三在北京大学工作。"\n{"text": ""}\n{"text": "李四去了上海。", "id": 3}\n', encoding="utf-8")
    outputs = []
    for source in (plain, lines):
        output = io.StringIO()
        assert stream_predictions(predictor, source, output, chunk_size=2) == 3
        outputs.append([json.loads(line) for line in output.getvalue().splitlines()])
    assert outputs[0] == outputs[1]
    assert [row["text"] for row in outputs[0]] == ["张三在北京大学工作。", "", "李四去了上海。"]
    for row in outputs[0]:
        assert all(row["text"][e["start"]:e["end"]] == e["text"] for e in row["entities"])


def test_cli_predict_writes_json_lines(predictor, tmp_path) -> None:
    model_dir = tmp_path / "model"
    predictor.save(model_dir)
    source = tmp_path / "in.txt"
    source.write_text("张三在北京大学工作。\na\n\n" * 50, encoding="utf-8")
    output = tmp_path / "out.jsonl"
    result = subprocess.run([sys.executable, "-m", "albert_ner", "predict", "--model-dir", str(model_dir),
                             "--input", str(source), "--output", str(output)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [row["text"] for row in rows] == ["张三在北京大学工作。", "a", ""] * 50
