"""One rule for the text of a JSON record, in `serve` and in `albert-ner predict`/`select`."""

from __future__ import annotations

from pathlib import Path

import pytest

from albert_ner.errors import DataError
from albert_ner.serving.http_codec import JSON, JSON_LINES, RequestError, RequestTexts
from albert_ner.text_records import read_texts, text_of

RECORDS = ['"张三"', '{"text": "李四"}', '{"source": "王五在北京"}', '{"text": "赵六", "source": "ignored"}']
TEXTS = ["张三", "李四", "王五在北京", "赵六"]


def test_text_of_takes_a_string_or_text_then_source() -> None:
    assert text_of("a") == "a" and text_of({"text": "b"}) == "b" and text_of({"source": "c"}) == "c"
    assert text_of({"text": "d", "source": "e"}) == "d"
    with pytest.raises(ValueError, match=r'needs a "text" \(or "source"\) key, found keys \[\'txt\'\]'):
        text_of({"txt": "x"})
    with pytest.raises(ValueError, match="found int"):
        text_of({"source": 3})


def test_serve_and_the_command_line_read_the_same_texts(tmp_path: Path) -> None:
    for body, kind in (("\n".join(RECORDS) + "\n", JSON_LINES), ("[" + ", ".join(RECORDS) + "]", JSON)):
        texts = RequestTexts(body, kind)
        assert list(texts) == TEXTS and len(texts) == 4 and not texts.single
        assert list(texts.chunks(3)) == [TEXTS[:3], TEXTS[3:]]
    path = tmp_path / "texts.jsonl"
    path.write_text("\n".join(RECORDS) + "\n", encoding="utf-8")
    assert list(read_texts(path)) == TEXTS


def test_both_name_where_a_record_without_text_is(tmp_path: Path) -> None:
    with pytest.raises(RequestError) as raised:
        RequestTexts('"ok"\n{"label": 1}\n', JSON_LINES)
    assert raised.value.status == 400 and raised.value.message.startswith('line 2: an object needs a "text"')
    path = tmp_path / "texts.jsonl"
    path.write_text('"ok"\n{"label": 1}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r'texts\.jsonl:2: an object needs a "text"'):
        list(read_texts(path))
