"""The dictionary teaches the model names it never saw labelled: a `train` run with a `lexicon` channel
finds new product names that only the dictionary knows, through the Predictor, the SavedModel and
`serve`; the same run without the dictionary cannot tell them from look-alikes.

Products and decoys are random three-character strings over the same characters, in the same sentence
frames, so nothing but the dictionary separates them. Training labels 60 products and leaves 60 decoys
unlabelled; the check uses 20 other products (in the dictionary, never in training) and 20 other decoys.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import TINY_HYPERPARAMETERS, OptMl
from test_serve import Server

CHARACTERS = list("甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未申酉戌亥金木水火土日月星风云雷电")
FRAMES = ["我买了{}。", "{}很好用。", "他们都喜欢{}啊。", "昨天看到{}了。"]


def names(count: int, rng: np.random.Generator, taken: set[str]) -> list[str]:
    found: list[str] = []
    while len(found) < count:
        name = "".join(rng.choice(CHARACTERS, 3))
        if name not in taken:
            taken.add(name)
            found.append(name)
    return found


def conll(sentences: list[tuple[str, bool]]) -> str:
    """BIO lines of frame sentences whose name is labelled PRODUCT when ``labelled``."""
    blocks = []
    for frame, name, labelled in sentences:
        before, after = frame.split("{}")
        tags = ["O"] * len(before) + (["B-PRODUCT", "I-PRODUCT", "I-PRODUCT"] if labelled else ["O"] * 3)
        tags += ["O"] * len(after)
        blocks.append("\n".join(f"{char} {tag}" for char, tag in zip(before + name + after, tags, strict=True)))
    return "\n\n".join(blocks) + "\n"


@pytest.fixture(scope="module")
def corpus() -> dict:
    return make_corpus()


def make_corpus() -> dict:
    rng = np.random.default_rng(7)
    taken: set[str] = set()
    train_products, train_decoys = names(60, rng, taken), names(60, rng, taken)
    validation_products, validation_decoys = names(8, rng, taken), names(8, rng, taken)
    new_products, new_decoys = names(20, rng, taken), names(20, rng, taken)

    def sentences(products: list[str], decoys: list[str], frames: int) -> list[tuple[str, str, bool]]:
        return [(FRAMES[(index + shift) % len(FRAMES)], name, name in products)
                for index, name in enumerate(products + decoys) for shift in range(frames)]

    dictionary = "".join(f"{name} 3 PRODUCT\n" for name in train_products + validation_products + new_products)
    return {"training": conll(sentences(train_products, train_decoys, 3)),
            "validation": conll(sentences(validation_products, validation_decoys, 1)),
            "dictionary": dictionary, "products": new_products, "decoys": new_decoys}


def train(opt_ml: OptMl, corpus: dict, lexicon: str) -> None:
    opt_ml.write_hyperparameters({**TINY_HYPERPARAMETERS, "epochs": "25", "early_stopping_patience": "0",
                                  "token_dropout": "0.2", "lexicon": lexicon, "seed": "3"})
    opt_ml.add_channel("training", contents={"train.txt": corpus["training"]})
    opt_ml.add_channel("validation", contents={"validation.txt": corpus["validation"]})
    if lexicon != "off":
        opt_ml.add_channel("lexicon", contents={"products.txt": corpus["dictionary"]})
    result = opt_ml.run_train()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def found_names(entities_per_text: list[list[dict]], names_in_texts: list[str]) -> float:
    """Share of the texts whose name (at offset 3, "我买了" first) is found as exactly one PRODUCT."""
    hits = [[(e["start"], e["end"], e["type"]) for e in entities] == [(3, 6, "PRODUCT")]
            for entities in entities_per_text]
    assert len(hits) == len(names_in_texts)
    return sum(hits) / len(hits)


def predict(opt_ml: OptMl, texts: list[str]) -> list[list[dict]]:
    from albert_ner.prediction import Predictor, entity_records

    predictor = Predictor.load(opt_ml.model_dir)
    return [entity_records(list(text), prediction.entities)
            for text, prediction in zip(texts, predictor.predict([list(text) for text in texts]), strict=True)]


SAVED_MODEL_RUNNER = r"""
import json, sys
import tensorflow as tf
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
out = {key: value.numpy() for key, value in serve(text=tf.constant(json.loads(sys.argv[2]))).items()}
print(json.dumps([[{"start": int(s), "end": int(e), "type": t.decode()} for s, e, t in zip(
    out["entity_starts"][row, :n], out["entity_ends"][row, :n], out["entity_types"][row, :n])]
    for row, n in enumerate(out["entity_counts"])]))
"""


def test_the_dictionary_alone_finds_new_names_everywhere_the_model_runs(corpus, tmp_path) -> None:
    with_dictionary = OptMl(tmp_path / "with")
    train(with_dictionary, corpus, "channel")
    texts = [f"我买了{name}。" for name in corpus["products"] + corpus["decoys"]]
    products, decoys = slice(0, len(corpus["products"])), slice(len(corpus["products"]), None)
    predicted = predict(with_dictionary, texts)
    assert found_names(predicted[products], corpus["products"]) >= 0.9
    assert found_names(predicted[decoys], corpus["decoys"]) <= 0.1

    result = subprocess.run([sys.executable, "-c", SAVED_MODEL_RUNNER, str(with_dictionary.model_dir / "1"),
                             json.dumps(texts, ensure_ascii=False)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout) == [[{k: e[k] for k in ("start", "end", "type")} for e in entities]
                                         for entities in predicted]

    server = Server(with_dictionary.base)
    try:
        server.wait_ready()
        status, _, body = server.invoke(json.dumps({"instances": [{"text": text} for text in texts]},
                                                   ensure_ascii=False))
        assert status == 200, body
        served = [[{k: e[k] for k in ("start", "end", "type")} for e in line["entities"]]
                  for line in json.loads(body)["predictions"]]
        assert served == [[{k: e[k] for k in ("start", "end", "type")} for e in entities] for entities in predicted]
    finally:
        server.stop()

    log = (with_dictionary.output_data_dir / "training.log").read_text(encoding="utf-8")
    assert "lexicon from " in log and "training entities that are dictionary words: PRODUCT 180/180" in log
    assert (with_dictionary.model_dir / "lexicon.txt").read_text(encoding="utf-8").count("\tPRODUCT\n") == 88

    without = OptMl(tmp_path / "without")
    train(without, corpus, "off")
    assert not (without.model_dir / "lexicon.txt").exists()
    blind = predict(without, texts)
    # Without the dictionary the names are indistinguishable: new products and decoys fare alike.
    assert abs(found_names(blind[products], corpus["products"]) - found_names(blind[decoys], corpus["decoys"])) <= 0.3
