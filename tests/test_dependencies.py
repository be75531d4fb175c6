"""pyproject.toml: the runtime (what the main job and the image install) pulls in none of the test stack."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

from packaging.requirements import Requirement

from conftest import REPO

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
# Multi-GB, and used only by the tests (reference encoder, local mode, notebooks).
TEST_ONLY = {"torch", "transformers", "sagemaker"}


def _name(requirement: Requirement) -> str:
    return re.sub(r"[-_.]+", "-", requirement.name).lower()


def _wanted(requirement: Requirement, extras: set[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in extras | {""})


def runtime_closure() -> set[str]:
    """Every distribution `pip install .` brings in, walked through the installed packages' metadata
    (the test environment has them all), so a heavy package pulled in indirectly counts too."""
    seen: set[str] = set()
    pending = [Requirement(text) for text in PROJECT["dependencies"]]
    while pending:
        requirement = pending.pop()
        name = _name(requirement)
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            raise AssertionError(f"{name} is not installed here: run scripts/setup.sh first") from None
        for text in requires:
            nested = Requirement(text)
            if _wanted(nested, set(requirement.extras)):
                pending.append(nested)
    return seen


def test_the_runtime_pulls_in_no_test_only_package() -> None:
    closure = runtime_closure()
    assert "tensorflow" in closure and "seqeval" in closure
    assert not closure & TEST_ONLY, sorted(closure & TEST_ONLY)


def test_the_test_extra_still_has_them() -> None:
    """scripts/test.sh installs `.[test]`: the split moved nothing the tests need out of it."""
    assert TEST_ONLY <= {_name(Requirement(text)) for text in PROJECT["optional-dependencies"]["test"]}
