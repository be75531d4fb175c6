"""The harness's own logic that needs no Docker engine: which Debian mirror debootstrap is pointed at."""

from __future__ import annotations

from pathlib import Path

import pytest

from .docker_harness import debian_mirror


def test_mirror_comes_from_deb822_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n# a comment: with a colon\nURIs: http://security.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n",
        encoding="utf-8")
    assert debian_mirror(tmp_path) == "http://mirror.example/debian"


def test_mirror_comes_from_one_line_sources_with_options(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://mirror.example/debian bookworm main\n",
        encoding="utf-8")
    assert debian_mirror(tmp_path) == "http://mirror.example/debian"


def test_no_bookworm_source_is_an_error_naming_the_directory(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text("deb http://mirror.example/debian trixie main\n", encoding="utf-8")
    with pytest.raises(RuntimeError, match=str(tmp_path)):
        debian_mirror(tmp_path)
