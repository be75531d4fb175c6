"""An albert_tiny-sized tagger with random weights, saved like a trained one: for speed and equality
checks, where accuracy does not matter (random weights even make the check harder: they emit many
entities of every type, and scores close to ties)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import keras

from albert_ner.lexicon import Lexicon
from albert_ner.modeling.albert import ALBERT_TINY
from albert_ner.modeling.tagger import AlbertTagger, build_model
from albert_ner.prediction import Predictor
from albert_ner.readers.conll import read_conll
from albert_ner.tag_schemes import LabelMap
from albert_ner.tokenization import CharTokenizer, Vocab

REPO = Path(__file__).resolve().parents[1]
MSRA_TEST = REPO / "data" / "msra" / "test" / "msra_test.txt"


def msra_texts(path: Path = MSRA_TEST) -> list[str]:
    if not path.exists():
        raise SystemExit(f"{path} is missing: run `python data/fetch_msra.py` first")
    sentences, _ = read_conll(path, repair=True)
    return ["".join(sentence.tokens) for sentence in sentences]


def random_tiny_model(model_dir: Path, texts: Sequence[str], seed: int = 1, lexicon: Lexicon | None = None
                      ) -> Predictor:
    """ALBERT_TINY (4 layers, hidden 312) + BiLSTM 128 + CRF over MSRA's types, max_seq_length 128, with
    ``lexicon``'s features when given."""
    keras.utils.set_random_seed(seed)
    vocab = Vocab.build([list(text) for text in texts])
    label_map = LabelMap(["LOC", "ORG", "PER"], "bioes")
    config = dataclasses.replace(ALBERT_TINY, vocab_size=len(vocab))
    model = AlbertTagger(config, len(label_map), cls_id=vocab.cls_id, sep_id=vocab.sep_id, pad_id=vocab.pad_id,
                         lstm_units=128, lexicon_size=0 if lexicon is None else lexicon.feature_size,
                         allowed=label_map.allowed_transitions())
    build_model(model, vocab.pad_id)
    predictor = Predictor.of_model(model, CharTokenizer(vocab), label_map, max_seq_length=128, lexicon=lexicon)
    predictor.save(model_dir)
    return predictor
