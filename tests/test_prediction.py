"""The Python Predictor on a small random model: batches of any shape, and `albert-ner predict` streaming."""

from __future__ import annotations

import io
import itertools
import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from albert_ner.cli import stream_predictions
from albert_ner.confidence import ScoredPrediction
from albert_ner.modeling.albert import AlbertConfig
from albert_ner.modeling.tagger import AlbertTagger, build_model
from albert_ner.prediction import Predictor
from albert_ner.tag_schemes import LabelMap, tags_to_entities
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
    return Predictor.of_model(model, CharTokenizer(vocab), label_map, max_seq_length=max_seq_length, batch_size=4)


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


def test_predict_scores_every_entity_exactly_and_windows_alone_score_the_same() -> None:
    """Entity scores are the CRF's span probabilities: checked against enumeration of all allowed taggings
    of a short sentence; a window of a long sentence scores as it would alone."""
    texts = ["张三在北京大学工作。", "李四去了上海。"]
    predictor = random_predictor(texts, max_seq_length=12, seed=5)
    sentence = "张三在北京"
    (prediction,) = predictor.predict([list(sentence)])
    assert prediction.tags == predictor.predict_tags([list(sentence)])[0]
    assert prediction.entities and len(prediction.scores) == len(prediction.entities)

    model, label_map = predictor.model, predictor.label_map
    ids = np.array([predictor.tokenizer.encode(list(sentence))], np.int32)
    emissions = model(ids, np.array([len(sentence)], np.int32)).numpy()[0].astype(np.float64)
    transitions, start, end = (np.where(allowed, weights.numpy(), -np.inf) for weights, allowed in zip(
        (model.crf.transitions, model.crf.start_transitions, model.crf.end_transitions),
        (model.crf.allowed[1], model.crf.allowed[0], model.crf.allowed[2]), strict=True))
    paths = np.array(list(itertools.product(range(len(label_map)), repeat=len(sentence))))
    scores = (start[paths[:, 0]] + emissions[np.arange(len(sentence)), paths].sum(axis=1)
              + transitions[paths[:, :-1], paths[:, 1:]].sum(axis=1) + end[paths[:, -1]])
    probabilities = np.exp(scores - np.logaddexp.reduce(scores))
    entities_of = [set(tags_to_entities([label_map.tag(t) for t in path], label_map.scheme, repair=True)[0])
                   for path in paths]
    best = np.argmax(scores)
    assert abs(prediction.sentence_score - probabilities[best]) < 1e-5
    for entity, score in zip(prediction.entities, prediction.scores, strict=True):
        expected = probabilities[[entity in found for found in entities_of]].sum()
        assert abs(score - expected) < 1e-5, (entity, score, expected)

    long_text = "张三在北京大学工作。" * 3  # 30 characters: windows of 10
    (long_prediction,) = predictor.predict([list(long_text)])
    (alone,) = predictor.predict([list("张三在北京大学工作。")])
    assert len(long_prediction.entities) == 3 * len(alone.entities)
    np.testing.assert_allclose(long_prediction.scores, alone.scores * 3, atol=1e-5)
    assert abs(long_prediction.sentence_score - alone.sentence_score ** 3) < 1e-5
    assert predictor.predict([[], ["a"]])[0] == ScoredPrediction([], [], [], 1.0)


def test_softmax_head_scores_are_products_of_tag_probabilities() -> None:
    keras.utils.set_random_seed(6)
    vocab = Vocab.build([list("张三在北京大学工作。")])
    label_map = LabelMap(["LOC", "PER"], "bio")
    config = AlbertConfig(vocab_size=len(vocab), embedding_size=16, hidden_size=32, num_hidden_layers=1,
                          num_attention_heads=2, intermediate_size=64, family="brightmart")
    model = AlbertTagger(config, len(label_map), cls_id=vocab.cls_id, sep_id=vocab.sep_id, pad_id=vocab.pad_id,
                         lstm_units=0, use_crf=False)
    build_model(model, vocab.pad_id)
    predictor = Predictor.of_model(model, CharTokenizer(vocab), label_map, max_seq_length=32)
    sentence = list("张三在北京大学工作。")
    (prediction,) = predictor.predict([sentence])
    ids = np.array([predictor.tokenizer.encode(sentence)], np.int32)
    probabilities = tf.nn.softmax(model(ids, np.array([len(sentence)], np.int32))).numpy()[0]
    chosen = probabilities[np.arange(len(sentence)), [label_map.tag_id(tag) for tag in prediction.tags]]
    assert abs(prediction.sentence_score - chosen.prod()) < 1e-5
    assert prediction.entities, "a random softmax head tags something"
    for entity, score in zip(prediction.entities, prediction.scores, strict=True):
        assert abs(score - chosen[entity.start:entity.end].prod()) < 1e-5


def test_cli_predict_entities_carry_scores(predictor, tmp_path) -> None:
    output = io.StringIO()
    stream_predictions(predictor, ["张三在北京大学工作。李四去了上海。" * 3], output)
    (row,) = [json.loads(line) for line in output.getvalue().splitlines()]
    assert row["entities"] and all(0.0 <= entity["score"] <= 1.0 for entity in row["entities"])
