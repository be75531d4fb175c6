"""Dictionaries: reading jieba's format, matching against a brute-force scan (in Python and in the graph),
features across window cuts, the saved model directory, and the errors bad files get."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from albert_ner.batching import EncodedExamples
from albert_ner.errors import DataError
from albert_ner.lexicon import ANY_WORD, POSITIONS, Lexicon, choose_lexicon, general_dictionary, read_lexicon
from albert_ner.lexicon_lookup import LexiconLookup
from albert_ner.sentences import Sentence
from albert_ner.tag_schemes import LabelMap
from albert_ner.tokenization import CharTokenizer, Vocab

TYPES = ["nr", "ns", "PER", "产品"]


def brute_force_features(text: str, lexicon: Lexicon) -> np.ndarray:
    """Every substring checked against the word list, every covered character marked by hand."""
    width = len(lexicon.channels)
    features = np.zeros((len(text), len(POSITIONS) * width), np.uint8)
    for start in range(len(text)):
        for end in range(start + 1, len(text) + 1):
            types = lexicon.words.get(text[start:end])
            if types is None:
                continue
            channels = [0] + [lexicon.channels.index(word_type) for word_type in types]
            for position in range(start, end):
                if end - start == 1:
                    where = "S"
                elif position == start:
                    where = "B"
                elif position == end - 1:
                    where = "E"
                else:
                    where = "M"
                for channel in channels:
                    features[position, POSITIONS.index(where) * width + channel] = 1
    return features


def random_case(seed: int) -> tuple[Lexicon, list[str]]:
    """Words and texts over a 4-letter alphabet, so that words overlap, nest and repeat."""
    rng = np.random.default_rng(seed)
    alphabet = list("ab长词")
    words: dict[str, frozenset[str]] = {}
    for _ in range(int(rng.integers(1, 40))):
        word = "".join(rng.choice(alphabet, int(rng.integers(1, 9))))
        types = rng.choice(TYPES, int(rng.integers(0, 3)), replace=False).tolist()
        words[word] = words.get(word, frozenset()) | frozenset(types)
    texts = ["".join(rng.choice(alphabet, int(rng.integers(0, 30)))) for _ in range(25)]
    return Lexicon.from_words(words), texts


@pytest.mark.parametrize("seed", range(12))
def test_python_and_graph_matching_equal_a_brute_force_scan(seed: int) -> None:
    lexicon, texts = random_case(seed)
    expected = [brute_force_features(text, lexicon) for text in texts]
    graph = LexiconLookup(lexicon)(tf.strings.unicode_decode(tf.constant(texts), "UTF-8")).numpy()
    longest = max(map(len, texts))
    assert graph.shape == (len(texts), longest, lexicon.feature_size)
    for text, reference, row in zip(texts, expected, graph, strict=True):
        np.testing.assert_array_equal(lexicon.matcher.features(list(text)), reference)
        np.testing.assert_array_equal(row[:len(text)], reference)
        assert not row[len(text):].any()
    assert sum(int(features.sum()) for features in expected) > 0


def test_feature_layout_and_matches() -> None:
    lexicon = Lexicon.from_words({"北京": frozenset({"ns"}), "北京大学": frozenset({"nt"}), "京": frozenset()})
    assert lexicon.channels == (ANY_WORD, "ns", "nt") and lexicon.feature_size == 12
    assert lexicon.matcher.matches(list("在北京大学")) == [(1, 3, (0, 1)), (1, 5, (0, 2)), (2, 3, (0,))]
    features = lexicon.matcher.features(list("在北京大学"))
    slot = {(position, channel): POSITIONS.index(position) * 3 + lexicon.channels.index(channel)
            for position in POSITIONS for channel in lexicon.channels}
    assert not features[0].any()
    assert features[2, slot["E", "ns"]] and features[2, slot["M", "nt"]] and features[2, slot["S", ANY_WORD]]
    assert not features[2, slot["S", "ns"]]
    assert features[4, slot["E", "nt"]] and not features[4, slot["E", "ns"]]


def test_windows_get_the_features_of_the_whole_sentence() -> None:
    """A word crossing a window cut, and one longer than a window, mark the characters of every window."""
    text = "甲乙丙丁戊己庚辛壬癸子丑"
    lexicon = Lexicon.from_words({"丙丁戊": frozenset({"X"}), "己庚辛壬癸子丑": frozenset({"Y"}),
                                  "甲": frozenset()})
    sentence = Sentence(tuple(text), ())
    vocab = Vocab.build([list(text)])
    examples = EncodedExamples([sentence], 4, CharTokenizer(vocab), LabelMap(["X"], "bioes"), lexicon.matcher)
    assert examples.lengths.tolist() == [4, 4, 4]
    expected = brute_force_features(text, lexicon)
    batched = examples.batch(np.arange(3))[3]
    assert batched.shape == (3, 4, lexicon.feature_size)
    np.testing.assert_array_equal(batched.reshape(12, -1), expected)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_jiebas_user_dictionary_lines_and_merges_duplicates(tmp_path: Path) -> None:
    first = write(tmp_path / "a.txt", "\ufeff云计算\n创新办 3 i\n凱特琳 nz\n台中 5\n\nNew York\tns\n云计算 ORG\n")
    second = write(tmp_path / "b.txt", "台中 ns\n阿司匹林\t12\tDRUG\n")
    lexicon = read_lexicon([first, second])
    assert lexicon.words == {"云计算": {"ORG"}, "创新办": {"i"}, "凱特琳": {"nz"}, "台中": {"ns"},
                             "New York": {"ns"}, "阿司匹林": {"DRUG"}}
    assert lexicon.channels == (ANY_WORD, "DRUG", "ORG", "i", "ns", "nz")
    assert lexicon.sources == (str(first), str(second))


@pytest.mark.parametrize(("text", "line", "message"), [
    ("好\n北京 12 ns extra\n", 2, "expected `word`, `word TYPE`"),
    ("北京 x12 ns\n", 1, "frequency of '北京' must be a non-negative integer"),
    ("北京 -3 ns\n", 1, "frequency"),
    ("好\n\n北京\t\tns\n", 3, "expected `word`"),
])
def test_a_bad_line_is_named(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = write(tmp_path / "dict.txt", text)
    with pytest.raises(DataError, match=message) as error:
        read_lexicon([path])
    assert str(error.value).startswith(f"{path}:{line}: ")


def test_an_empty_dictionary_and_a_non_utf8_file_are_named(tmp_path: Path) -> None:
    empty = write(tmp_path / "empty.txt", "\n  \n")
    with pytest.raises(DataError, match=f"^{empty}: the dictionary file holds no words"):
        read_lexicon([empty])
    gbk = tmp_path / "gbk.txt"
    gbk.write_bytes("北京 ns\n".encode() + "上海 ns\n".encode("gbk"))
    with pytest.raises(DataError, match=f"^{gbk}:2: not UTF-8"):
        read_lexicon([gbk])


def test_the_hyperparameter_and_the_channel_choose_the_dictionaries(tmp_path: Path) -> None:
    channel = tmp_path / "lexicon"
    write(channel / "products.txt", "小米手环 PRODUCT\n")
    write(channel / ".hidden", "ignored\n")
    general = choose_lexicon(None, None)
    assert general is not None and "北京" in general.words and general.sources[0].startswith("jieba ")
    both = choose_lexicon(None, channel)
    assert both is not None and {"北京", "小米手环"} <= set(both.words) and "ignored" not in both.words
    only_channel = choose_lexicon("channel", channel)
    assert only_channel is not None and set(only_channel.words) == {"小米手环"}
    assert choose_lexicon("off", None) is None
    for unused in ("off", "general"):
        with pytest.raises(DataError, match=f"lexicon={unused!r} leaves unused"):
            choose_lexicon(unused, channel)
    with pytest.raises(DataError, match="lexicon='channel' needs a `lexicon` channel"):
        choose_lexicon("channel", None)
    with pytest.raises(DataError, match="holds no files"):
        choose_lexicon("both", write(tmp_path / "dot" / ".only", "x\n").parent)


def test_the_general_dictionary_is_jiebas() -> None:
    lines = general_dictionary().read_text(encoding="utf-8").splitlines()
    lexicon = choose_lexicon("general", None)
    assert lexicon is not None
    assert len(lines) == 349_046 and len(lexicon.words) == 349_045  # one word is listed twice
    assert {"nr", "ns", "nt", "nz"} <= set(lexicon.channels) and len(lexicon.channels) == 56
    assert lexicon.words["北京"] == {"ns"} and lexicon.longest_word == 16


def test_a_saved_model_directory_keeps_the_dictionary(tmp_path: Path) -> None:
    from albert_ner.model_directory import LEXICON_FILE
    from albert_ner.modeling.albert import AlbertConfig
    from albert_ner.modeling.tagger import AlbertTagger, build_model
    from albert_ner.prediction import Predictor

    lexicon = Lexicon.from_words({"北京": frozenset({"ns"}), "New York": frozenset({"ns", "LOC"}),
                                  "好": frozenset()}, ["a test"])
    vocab = Vocab.build([list("在北京好New York")])
    label_map = LabelMap(["LOC"], "bioes")
    config = AlbertConfig(vocab_size=len(vocab), embedding_size=8, hidden_size=16, num_hidden_layers=1,
                          num_attention_heads=2, intermediate_size=32, family="brightmart")
    model = AlbertTagger(config, len(label_map), cls_id=vocab.cls_id, sep_id=vocab.sep_id, pad_id=vocab.pad_id,
                         lstm_units=4, lexicon_size=lexicon.feature_size, allowed=label_map.allowed_transitions())
    build_model(model, vocab.pad_id)
    predictor = Predictor.of_model(model, CharTokenizer(vocab), label_map, 16, lexicon=lexicon)
    predictor.save(tmp_path)
    assert (tmp_path / LEXICON_FILE).read_text(encoding="utf-8") == "New York\tLOC\nNew York\tns\n北京\tns\n好\n"
    loaded = Predictor.load(tmp_path)
    assert loaded.lexicon == lexicon
    texts = [list("在北京好"), list("New York北京" * 3)]
    assert [p.scores for p in loaded.predict(texts)] == [p.scores for p in predictor.predict(texts)]
    with pytest.raises(ValueError, match="takes 12 lexicon features per character, the lexicon gives 0"):
        Predictor.of_model(model, CharTokenizer(vocab), label_map, 16)
