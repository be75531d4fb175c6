"""The command line's text input: sentences from plain lines or JSON Lines, with errors that name the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from albert_ner.errors import DataError
from albert_ner.text_records import read_texts


def test_plain_and_json_lines_mix(tmp_path: Path) -> None:
    path = tmp_path / "in.txt"
    path.write_bytes('\ufeff张三在北京\r\n{"text": "李四"}\n"王五"\r老式\n\n'.encode())
    assert list(read_texts(path)) == ["张三在北京", "李四", "王五", "老式", ""]


@pytest.mark.parametrize("data, line", [(b"\xff\xfe bad\nok\n", 1), ("好\n".encode() + b"\xc3(\n", 2),
                                        ("好\n".encode() * 5000 + b"\xc3(\n", 5001)])
def test_bytes_that_are_not_utf8_name_the_line(tmp_path: Path, data: bytes, line: int) -> None:
    """Decoding used to run ahead in 8 KiB chunks: a bad byte was blamed on the line being read (or, on the
    first line, ended in UnboundLocalError)."""
    path = tmp_path / "in.txt"
    path.write_bytes(data)
    with pytest.raises(DataError, match=rf"^{path}:{line}: not UTF-8"):
        list(read_texts(path))


def test_json_line_without_text_is_named(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "好"}\n{"sentence": "坏"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=rf'^{path}:2: an object needs a "text" \(or "source"\) key'):
        list(read_texts(path))
