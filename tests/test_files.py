"""Outputs appear complete or not at all: every atomic write goes through files.replace_atomically."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from albert_ner.files import read_text, replace_atomically, replacing, write_text_atomically
from albert_ner.tokenization import Vocab


def test_replacing_a_file_leaves_no_temporary_and_keeps_the_suffix(tmp_path: Path) -> None:
    target = tmp_path / "model" / "model.weights.h5"
    with replacing(target) as partial:
        assert partial.parent == target.parent and partial.name.endswith(".weights.h5") and partial != target
        partial.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert [path.name for path in target.parent.iterdir()] == ["model.weights.h5"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError), replacing(target) as partial:
        partial.write_text("half", encoding="utf-8")
        raise RuntimeError("disk full")
    assert target.read_text(encoding="utf-8") == "old"
    assert [path.name for path in tmp_path.iterdir()] == ["report.json"]


def test_a_directory_replaces_the_old_one_whole(tmp_path: Path) -> None:
    target = tmp_path / "1"
    (target / "variables").mkdir(parents=True)
    (target / "saved_model.pb").write_text("old", encoding="utf-8")
    (target / "variables" / "stale").write_text("old", encoding="utf-8")
    with replacing(target) as partial:
        partial.mkdir()
        (partial / "saved_model.pb").write_text("new", encoding="utf-8")
    assert sorted(path.name for path in target.iterdir()) == ["saved_model.pb"]
    assert (target / "saved_model.pb").read_text(encoding="utf-8") == "new"
    assert [path.name for path in tmp_path.iterdir()] == ["1"]


def test_the_temporary_must_sit_beside_the_target(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_text("x", encoding="utf-8")
    with pytest.raises(ValueError, match="not beside"):
        replace_atomically(tmp_path / "a" / "x", tmp_path / "x")


def test_vocab_is_written_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """model/vocab.txt used to be written in place: a failure mid-write left a truncated vocabulary."""
    path = tmp_path / "vocab.txt"
    old = Vocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "甲"])
    old.save(path)

    def fail(_: int) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match="No space left"):
        Vocab([*old.tokens, "乙"]).save(path)
    assert Vocab.from_file(path).tokens == old.tokens
    assert [entry.name for entry in tmp_path.iterdir()] == ["vocab.txt"]


def test_text_is_written_as_utf8_and_read_back(tmp_path: Path) -> None:
    write_text_atomically(tmp_path / "out.txt", "人名\n")
    assert read_text(tmp_path / "out.txt") == "人名\n"
