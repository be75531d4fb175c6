import re

import numpy as np
import pytest

from albert_ner.errors import DataError
from albert_ner.tokenization import SPACE_TOKEN, SPECIAL_TOKENS, CharTokenizer, Vocab, normalize_token

WORDS = ["!", ",", "a", "e", "1", "中", "国", "。", "hello", "##ing"]


@pytest.fixture
def albert_vocab_file(tmp_path):
    """A small vocab.txt with albert_zh's layout: [PAD]=0, [unused1..99]=1..99, [UNK]=100, [CLS]=101..."""
    lines = ["[PAD]"] + [f"[unused{i}]" for i in range(1, 100)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_albert_vocab_ids(albert_vocab_file):
    vocab = Vocab.from_file(albert_vocab_file)
    assert len(vocab) == 114
    assert (vocab.pad_id, vocab.unk_id, vocab.cls_id, vocab.sep_id, vocab.mask_id) == (0, 100, 101, 102, 103)
    assert vocab.id(SPACE_TOKEN) == 1
    assert vocab.id("中") == 109 and vocab.id("hello") == 112 and vocab.id("不在") == 100


def test_vocab_file_accepts_bom_and_crlf_and_round_trips(tmp_path, albert_vocab_file):
    vocab = Vocab.from_file(albert_vocab_file)
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes(b"\xef\xbb\xbf" + albert_vocab_file.read_bytes().replace(b"\n", b"\r\n"))
    assert Vocab.from_file(crlf).tokens == vocab.tokens
    vocab.save(tmp_path / "saved.txt")
    assert Vocab.from_file(tmp_path / "saved.txt").tokens == vocab.tokens


def test_bad_vocab_files(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n中\n国\n中\n", encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(f"{path}:8: vocabulary token '中' appears twice, at ids 5 and 7")):
        Vocab.from_file(path)
    path.write_text("[PAD]\n[UNK]\n中\n", encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(f"{path}: vocabulary lacks the special tokens [CLS], [SEP], [MASK]")):
        Vocab.from_file(path)
    path.write_text("[PAD]\n\n[UNK]\n", encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(f"{path}:2: empty vocabulary line")):
        Vocab.from_file(path)


@pytest.mark.parametrize(
    "char, expected",
    [
        ("Ａ", "a"),  # full-width letter, upper case
        ("１", "1"),
        ("，", ","),
        ("！", "!"),
        ("É", "e"),  # accents stripped with lower-casing, as BERT's uncased tokenizer does
        ("中", "中"),
        ("。", "。"),  # not ASCII: stays
        (" ", SPACE_TOKEN),
        ("\u3000", SPACE_TOKEN),  # ideographic space
        ("\t", SPACE_TOKEN),
        ("\x00", SPACE_TOKEN),  # control
        ("\u200b", SPACE_TOKEN),  # zero-width space (format character)
        ("Hello", "hello"),
    ],
)
def test_normalize(albert_vocab_file, char, expected):
    assert CharTokenizer(Vocab.from_file(albert_vocab_file)).normalize(char) == expected


def test_normalize_without_lower_casing():
    assert normalize_token("Ａ", lower_case=False) == "A"
    assert normalize_token("É", lower_case=False) == "É"


def test_encode_gives_exactly_one_id_per_token(albert_vocab_file):
    tokenizer = CharTokenizer(Vocab.from_file(albert_vocab_file))
    tokens = ["中", "Ａ", " ", "\u3000", "，", "龘", "HELLO", "world", "ing", "国"]
    ids = tokenizer.encode(tokens)
    assert ids.dtype == np.int32
    assert ids.tolist() == [109, 106, 1, 1, 105, 100, 112, 100, 100, 110]
    assert tokenizer.encode([]).shape == (0,)


def test_whitespace_is_unknown_without_a_space_token():
    vocab = Vocab([*SPECIAL_TOKENS, "中"])
    tokenizer = CharTokenizer(vocab)
    assert tokenizer.normalize(" ") == "[UNK]"
    assert tokenizer.encode(["中", " "]).tolist() == [5, vocab.unk_id]


def test_encode_corpus_counts_unknown_tokens(albert_vocab_file):
    tokenizer = CharTokenizer(Vocab.from_file(albert_vocab_file))
    encoded, stats = tokenizer.encode_corpus([list("中国龘"), list("龘𠀀中"), list("a")])
    assert [ids.tolist() for ids in encoded] == [[109, 110, 100], [100, 100, 109], [106]]
    assert (stats.count, stats.total) == (3, 7)
    assert stats.rate == pytest.approx(3 / 7)
    assert stats.most_common == (("龘", 2), ("𠀀", 1))
    assert "3 of 7 tokens (42.86%) are [UNK]" in str(stats)


def test_build_layout_order_and_normalisation():
    sentences = [tuple("乙甲甲 Ａ"), list("aa乙\u3000丙")]
    vocab = Vocab.build(sentences)
    # a: 3 (Ａ folds into a), 乙: 2, 甲: 2 (tie broken by character), 丙: 1; whitespace is [unused1].
    assert vocab.tokens == ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused1]", "a", "乙", "甲", "丙")
    assert (vocab.pad_id, vocab.unk_id, vocab.cls_id, vocab.sep_id, vocab.mask_id) == (0, 1, 2, 3, 4)
    assert Vocab.build(sentences, min_count=2).tokens[6:] == ("a", "乙", "甲")
    assert Vocab.build(sentences, max_size=8).tokens[6:] == ("a", "乙")
    with pytest.raises(ValueError, match="max_size 5"):
        Vocab.build(sentences, max_size=5)
    tokenizer = CharTokenizer(vocab)
    assert tokenizer.encode(list("Ａ甲\u3000丁")).tolist() == [6, 8, 5, 1]


def test_vocab_constructor_rejects_duplicates():
    with pytest.raises(ValueError, match="appears twice"):
        Vocab([*SPECIAL_TOKENS, "中", "中"])
