"""The documents' promises: README.md is a short front page whose links resolve, its two commands are
the ones that exist, the docs' Python example runs, and the docs list every hyperparameter."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from albert_ner.hyperparameters import Hyperparameters
from conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
#: The page that holds the generated hyperparameter table (scripts/hyperparameter_table.py --write).
HYPERPARAMETERS_PAGE = REPO / "docs" / "sagemaker.md"
#: The page that holds the "Pretrained ALBERT in Python" example.
PRETRAINED_PAGE = REPO / "docs" / "pretrained-models.md"
MAX_README_LINES = 250
#: Markdown links and images: [text](target) and ![alt](target), the target up to an optional #anchor.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s#]*)(?:#[^)\s]*)?\)")


def relative_link_targets(text: str) -> list[str]:
    return [target for target in LINK.findall(text) if target and not re.match(r"[a-z]+:", target)]


def test_quick_start_has_the_two_commands_in_their_own_blocks() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", quick_start, re.S)
    assert [block.strip() for block in blocks] == ["scripts/main_job.sh", "scripts/test.sh"]
    assert (REPO / "scripts/main_job.sh").is_file() and (REPO / "scripts/test.sh").is_file()


def test_readme_is_a_front_page() -> None:
    lines = README.count("\n") + (not README.endswith("\n"))
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; the front page keeps to {MAX_README_LINES}"


def test_readme_links_every_docs_page_and_each_resolves() -> None:
    targets = relative_link_targets(README)
    docs_links = [target for target in targets if target.startswith("docs/") and target.endswith(".md")]
    assert docs_links, "README.md links no docs/*.md page"
    missing = [target for target in docs_links if not (REPO / target).is_file()]
    assert not missing, f"README.md links docs pages that do not exist: {missing}"
    pages = sorted(f"docs/{page.name}" for page in (REPO / "docs").glob("*.md"))
    unlinked = [page for page in pages if page not in docs_links]
    assert not unlinked, f"docs pages that README.md does not link: {unlinked}"


@pytest.mark.parametrize("page", ["README.md", "bench/README.md", "data/README.md",
                                  *sorted(f"docs/{path.name}" for path in (REPO / "docs").glob("*.md"))])
def test_relative_links_and_images_resolve(page: str) -> None:
    path = REPO / page
    targets = relative_link_targets(path.read_text(encoding="utf-8"))
    missing = [target for target in targets if not (path.parent / target).exists()]
    assert not missing, f"{page} links files that do not exist: {missing}"


def test_hyperparameter_table_is_current() -> None:
    """The table is generated (scripts/hyperparameter_table.py --write); a stale one fails here."""
    sys.path.insert(0, str(REPO / "scripts"))
    from hyperparameter_table import TABLE_PAGE, table

    assert Path(TABLE_PAGE) == HYPERPARAMETERS_PAGE
    text = HYPERPARAMETERS_PAGE.read_text(encoding="utf-8")
    assert table() in text
    for name in Hyperparameters().to_dict():
        assert f"| `{name}` |" in text, name


def test_pretrained_example_runs(tmp_path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from albert_fixtures import write_pretrained_directory

    section = PRETRAINED_PAGE.read_text(encoding="utf-8").split("## Pretrained ALBERT in Python", 1)[1]
    example = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    write_pretrained_directory(tmp_path / "albert_tiny_zh", "brightmart", max_position_embeddings=128)
    monkeypatch.chdir(tmp_path)
    exec(compile(example, str(PRETRAINED_PAGE), "exec"), {})
    printed = capsys.readouterr().out
    assert re.search(r"^\d+ encoder tensors loaded \(brightmart\)$", printed, re.M)
    assert "[[" in printed or "[]" in printed
