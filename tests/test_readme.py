"""The README's promises: its Python example runs, and it documents every hyperparameter."""

from __future__ import annotations

import re
import sys

import pytest

from albert_ner.hyperparameters import Hyperparameters
from conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_quick_start_has_the_two_commands_in_their_own_blocks() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", quick_start, re.S)
    assert [block.strip() for block in blocks] == ["scripts/main_job.sh", "scripts/test.sh"]
    assert (REPO / "scripts/main_job.sh").is_file() and (REPO / "scripts/test.sh").is_file()


def test_hyperparameter_table_is_current() -> None:
    """The table is generated (scripts/hyperparameter_table.py --write); a stale one fails here."""
    sys.path.insert(0, str(REPO / "scripts"))
    from hyperparameter_table import table

    assert table() in README
    for name in Hyperparameters().to_dict():
        assert f"| `{name}` |" in README, name


def test_pretrained_example_runs(tmp_path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from albert_fixtures import write_pretrained_directory

    section = README.split("## Pretrained ALBERT in Python", 1)[1]
    example = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    write_pretrained_directory(tmp_path / "albert_tiny_zh", "brightmart", max_position_embeddings=128)
    monkeypatch.chdir(tmp_path)
    exec(compile(example, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert re.search(r"^\d+ encoder tensors loaded \(brightmart\)$", printed, re.M)
    assert "[[" in printed or "[]" in printed
