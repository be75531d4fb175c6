"""The exported SavedModel, loaded by a python that never imports albert_ner, equals the Python Predictor.

The model has random weights (fast to build, and it emits entities of every type, near ties included) and
a 32-token window, so that sample sentences and the hand-made texts below span several windows. Every test
runs twice: on a model without a lexicon, and on one with a dictionary whose words cross window cuts, are
longer than a window, overlap and carry several types, matched in the graph by hash-table lookups.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from albert_ner.export import export_saved_model
from albert_ner.lexicon import Lexicon
from albert_ner.modeling.albert import AlbertConfig
from albert_ner.modeling.tagger import AlbertTagger, build_model
from albert_ner.prediction import Predictor
from albert_ner.tag_schemes import LabelMap, tags_to_entities
from albert_ner.tokenization import CharTokenizer, Vocab
from conftest import SAMPLE

EDGE_CASES = [
    "",
    " ",
    "张三在北京大学工作。",
    "ＡＢＣ公司的Ｔｏｍ在Ｂｅｉｊｉｎｇ，ＧＯＯＧＬＥ",  # full width folds to half width, then lower case
    "王 五\t在\r\n上海 😀🀄︎ 工作\u200b。",  # whitespace, emoji, variation selector, zero-width space
    "ÉCOLE café naïve Ölçü",  # accents stripped
    "\x00\x01\x7f\ue000\U000f0000\ufffd",  # control, private use, replacement character
    "李四" * 200,  # no punctuation: cut at the window length
    "张三在北京工作，" * 30 + "无标点" * 50,  # cut after punctuation, then at the window length
    "。" * 70,
    "a" * 29, "a" * 30, "a" * 31, "a" * 61,
    "x" * 29 + "。" + "y" * 40,  # punctuation exactly at the window's last character
]

# Each tagged in a batch of its own too: one-character batches are a special case of the Viterbi scan.
ALONE = ["a", "", "张", "。", "张三", "ＡＢ"]

# argv: saved model dir, texts JSON path, count of ALONE texts at the end.
# Prints the signature, then one JSON line per text.
RUNNER = r"""
import json, sys
import tensorflow as tf
signature = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
texts = json.load(open(sys.argv[2], encoding="utf-8"))
inputs = signature.structured_input_signature[1]
outputs = signature.structured_outputs
print(json.dumps({"inputs": {k: [v.dtype.name, v.shape.as_list()] for k, v in inputs.items()},
                  "outputs": {k: [v.dtype.name, v.shape.as_list()] for k, v in outputs.items()}}))
for batch in ([texts], [texts[:1]], [texts[i:i + 7] for i in range(0, len(texts), 7)],
              [[text] for text in texts[-int(sys.argv[3]):]]):
    for chunk in batch:
        out = {k: v.numpy() for k, v in signature(text=tf.constant([t.encode() for t in chunk])).items()}
        rows = []
        for row in range(len(chunk)):
            count, length = out["entity_counts"][row], out["lengths"][row]
            rows.append({"tags": [t.decode() for t in out["tags"][row, :length]],
                         "padding": sorted({t.decode() for t in out["tags"][row, length:]}),
                         "entities": [[int(s), int(e), k.decode()] for s, e, k in zip(
                             out["entity_starts"][row, :count], out["entity_ends"][row, :count],
                             out["entity_types"][row, :count])],
                         "entity_padding": sorted(set(out["entity_starts"][row, count:].tolist())
                                                  | set(out["entity_ends"][row, count:].tolist())),
                         "scores": out["entity_scores"][row, :count].tolist(),
                         "score_padding": sorted(set(out["entity_scores"][row, count:].tolist())),
                         "sentence_score": float(out["sentence_scores"][row])})
        print(json.dumps(rows, ensure_ascii=False))
print("imported albert_ner:", "albert_ner" in sys.modules)
"""


def sample_texts() -> list[str]:
    blocks = (SAMPLE / "test.txt").read_text(encoding="utf-8").split("\n\n")
    return ["".join(line.split()[0] for line in block.splitlines() if line.strip())
            for block in blocks if block.strip()]


def lexicon_of(texts: list[str]) -> Lexicon:
    """Substrings of the texts as words, typed at random, plus words longer than the 30-character window."""
    rng = np.random.default_rng(5)
    words: dict[str, set[str]] = {}
    for text in texts:
        for _ in range(3):
            if len(text) < 2:
                continue
            start = int(rng.integers(0, len(text) - 1))
            word = text[start:start + int(rng.integers(1, 7))]
            words.setdefault(word, set()).update(rng.choice(["nr", "ns", "PER", "产品"], int(rng.integers(0, 3)),
                                                            replace=False).tolist())
    for long_word in ("张三在北京工作，" * 5, "李四" * 20, "a" * 31):
        words[long_word] = {"长词"}
    return Lexicon.from_words({word: frozenset(types) for word, types in words.items()}, ["test words"])


def random_tagger(with_lexicon: bool, temperature: float = 1.0) -> Predictor:
    """The module's random tagger: a 32-token window, four entity types, some characters left unknown."""
    keras.utils.set_random_seed(3)
    texts = sample_texts()
    lexicon = lexicon_of(texts + EDGE_CASES) if with_lexicon else None
    # Leave some characters out of the vocabulary, so that [UNK] is exercised too.
    vocab = Vocab.build([list(text) for text in texts[:60]] + [list("abcxyz。，ecolecafenaiveolcu")])
    label_map = LabelMap(["LOC", "ORG", "PER", "产品"], "bioes")
    config = AlbertConfig(vocab_size=len(vocab), embedding_size=32, hidden_size=64, num_hidden_layers=1,
                          num_attention_heads=4, intermediate_size=128, family="brightmart")
    model = AlbertTagger(config, len(label_map), cls_id=vocab.cls_id, sep_id=vocab.sep_id, pad_id=vocab.pad_id,
                         lstm_units=16, lexicon_size=0 if lexicon is None else lexicon.feature_size,
                         allowed=label_map.allowed_transitions())
    build_model(model, vocab.pad_id)
    return Predictor.of_model(model, CharTokenizer(vocab), label_map, max_seq_length=32, lexicon=lexicon,
                              temperature=temperature)


@pytest.fixture(scope="module", params=["no lexicon", "lexicon"])
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Predictor, Path]:
    predictor = random_tagger(request.param == "lexicon")
    model_dir = tmp_path_factory.mktemp("exported") / "model"
    predictor.save(model_dir)
    path = export_saved_model(predictor, model_dir)
    return predictor, path


@pytest.fixture(scope="module")
def served(exported, tmp_path_factory) -> tuple[list[str], dict, list[list[dict]], str]:
    _, path = exported
    texts = sample_texts() + EDGE_CASES + ALONE
    texts_file = tmp_path_factory.mktemp("texts") / "texts.json"
    texts_file.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    result = subprocess.run([sys.executable, "-c", RUNNER, str(path), str(texts_file), str(len(ALONE))],
                            capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    signature = json.loads(lines[0])
    whole, first, *batches = [json.loads(line) for line in lines[1:-1]]
    chunks, alone = batches[:-len(ALONE)], batches[-len(ALONE):]
    return texts, signature, [whole, first, [row for chunk in chunks for row in chunk], alone], lines[-1]


def test_layout_is_tf_serving_s(exported) -> None:
    _, path = exported
    assert path.name == "1" and path.parent.name == "model"
    assert (path / "saved_model.pb").is_file() and (path / "variables" / "variables.index").is_file()
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".partial")]


def test_loads_without_albert_ner(served) -> None:
    assert served[3] == "imported albert_ner: False"


def test_signature_takes_strings_and_returns_tags_and_spans(served) -> None:
    _, signature, _, _ = served
    assert signature["inputs"] == {"text": ["string", [None]]}
    assert signature["outputs"] == {
        "tags": ["string", [None, None]], "lengths": ["int32", [None]],
        "entity_types": ["string", [None, None]], "entity_starts": ["int32", [None, None]],
        "entity_ends": ["int32", [None, None]], "entity_counts": ["int32", [None]],
        "entity_scores": ["float32", [None, None]], "sentence_scores": ["float32", [None]],
    }


def test_equals_the_python_predictor(exported, served) -> None:
    predictor, _ = exported
    texts, _, (whole, first, chunked, alone), _ = served
    tags = predictor.predict_tags([list(text) for text in texts])
    entity_count = 0
    for index, text in enumerate(texts):
        entities, _ = tags_to_entities(tags[index], predictor.label_map.scheme, repair=True)
        expected = [list(entity) for entity in entities]
        entity_count += len(expected)
        assert whole[index]["tags"] == tags[index], (index, text)
        assert whole[index]["entities"] == expected, (index, text)
        assert chunked[index]["entities"] == expected and chunked[index]["tags"] == tags[index]
        assert whole[index]["padding"] in ([], [""]) and whole[index]["entity_padding"] in ([], [-1])
    assert (first[0]["tags"], first[0]["entities"]) == (whole[0]["tags"], whole[0]["entities"])
    for text, [result] in zip(ALONE, alone, strict=True):
        [alone_tags] = predictor.predict_tags([list(text)])
        assert (result["tags"], result["entities"]) == (
            alone_tags, [list(e) for e in tags_to_entities(alone_tags, predictor.label_map.scheme, repair=True)[0]])
    assert entity_count > 100  # a check that sees entities


SCORE_TOLERANCE = 1e-5


def test_scores_equal_the_python_predictor(exported, served) -> None:
    predictor, _ = exported
    texts, _, (whole, first, chunked, alone), _ = served
    predictions = predictor.predict([list(text) for text in texts])
    largest = 0.0
    for index, prediction in enumerate(predictions):
        for result in (whole[index], chunked[index]):
            assert len(result["scores"]) == len(prediction.scores), (index, texts[index])
            np.testing.assert_allclose(result["scores"], prediction.scores, rtol=0, atol=SCORE_TOLERANCE)
            assert abs(result["sentence_score"] - prediction.sentence_score) <= SCORE_TOLERANCE
            largest = max([largest, abs(result["sentence_score"] - prediction.sentence_score)]
                          + [abs(a - b) for a, b in zip(result["scores"], prediction.scores, strict=True)])
        assert all(0.0 <= score <= 1.0 for score in whole[index]["scores"])
        assert whole[index]["score_padding"] in ([], [-1.0])
    for text, [result] in zip(ALONE, alone, strict=True):
        [prediction] = predictor.predict([list(text)])
        np.testing.assert_allclose(result["scores"], prediction.scores, rtol=0, atol=SCORE_TOLERANCE)
    scores = [score for prediction in predictions for score in prediction.scores]
    assert len(set(scores)) > 50 and min(scores) < 0.9, "random weights give uncertain entities"
    print(f"largest SavedModel - Predictor score difference: {largest:.2e}")


def test_edge_cases_keep_one_tag_per_character(served) -> None:
    texts, _, (whole, _, _, _), _ = served
    for text, result in zip(texts, whole, strict=True):
        assert len(result["tags"]) == len(text)
        assert all(0 <= start < end <= len(text) for start, end, _ in result["entities"])
    empty = whole[texts.index("")]
    assert (empty["tags"], empty["entities"]) == ([], [])


def test_export_replaces_an_earlier_export(exported) -> None:
    predictor, path = exported
    (path / "stale").write_text("x")
    assert export_saved_model(predictor, path.parent) == path
    assert not (path / "stale").exists()


def test_albert_ner_export_writes_the_saved_model_of_a_model_directory(tmp_path, capsys) -> None:
    """``albert-ner export MODEL_DIR`` gives an older model directory (no ``1/``) the SavedModel."""
    from albert_ner.cli import main
    from test_prediction import random_predictor

    predictor = random_predictor(["张三在北京大学工作。", "李四去了上海。"], seed=7)
    model_dir = tmp_path / "older model"
    predictor.save(model_dir)
    assert not (model_dir / "1").exists()
    assert main(["export", str(model_dir)]) == 0
    assert capsys.readouterr().out.strip() == str(model_dir / "1")
    assert (model_dir / "1" / "saved_model.pb").is_file()
