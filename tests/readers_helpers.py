"""Helpers shared by the reader tests: write a file, read CoNLL text, compare what two readers give."""

import json
import re
from pathlib import Path

import pytest

from albert_ner.errors import DataError
from albert_ner.readers.conll import read_conll


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def jsonl(*records) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def content(sentences):
    """What training sees of sentences: tokens and entities, not where they came from."""
    return [(s.tokens, s.entities) for s in sentences]


def conll_content(tmp_path: Path, text: str):
    return content(read_conll(write(tmp_path / "equivalent.conll", text))[0])


def raises_at(path, line, match):
    """The error must name the file and line, and say what is wrong."""
    return pytest.raises(DataError, match=re.escape(f"{path}:{line}: ") + ".*" + match)
