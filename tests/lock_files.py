"""The lock files under container/requirements, read as pip reads them: one requirement per logical line
(backslash continuations joined), each ``name==version [; marker]`` followed by its ``--hash`` options."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

from conftest import REPO

LOCKS = REPO / "container" / "requirements"
# What the images are: CPython 3.11 on Linux x86_64 (container/Dockerfile's base image).
IMAGE_ENVIRONMENT = {**default_environment(), "python_version": "3.11", "python_full_version": "3.11.14",
                     "implementation_name": "cpython", "platform_python_implementation": "CPython",
                     "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
                     "os_name": "posix"}


@dataclass(frozen=True)
class Pin:
    requirement: Requirement
    hashes: tuple[str, ...]
    line: int

    @property
    def name(self) -> str:
        return canonical(self.requirement.name)

    @property
    def version(self) -> str | None:
        """The version of an exact ``==`` pin, else None."""
        specifiers = list(self.requirement.specifier)
        if len(specifiers) == 1 and specifiers[0].operator == "==" and "*" not in specifiers[0].version:
            return specifiers[0].version
        return None

    def applies(self, environment: dict[str, str]) -> bool:
        return self.requirement.marker is None or self.requirement.marker.evaluate(environment)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> list[Pin]:
    pins: list[Pin] = []
    logical, first_line = "", 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not logical:
            first_line = number
        logical += " " + text.removesuffix("\\").strip()
        if text.endswith("\\"):
            continue
        words = logical.split(" --hash=")
        logical = ""
        if words[0].strip():
            pins.append(Pin(Requirement(words[0].strip()), tuple(word.strip() for word in words[1:]), first_line))
    return pins


def versions(path: Path, environment: dict[str, str] = IMAGE_ENVIRONMENT) -> dict[str, str | None]:
    """name -> pinned version for every entry of the lock that pip installs in ``environment``."""
    return {pin.name: pin.version for pin in read_lock(path) if pin.applies(environment)}
