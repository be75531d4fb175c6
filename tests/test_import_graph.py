"""The package's imports point down: no cycle, and only the readers and the channel walk import a reader.

Read from the source with ``ast`` (imports inside functions included), so a lazy import cannot hide a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "container" / "ner" / "albert_ner"
#: The format readers; only readers/ itself and data.py (the channel walk and format dispatch) may import them.
READERS = {f"albert_ner.readers.{path.stem}" for path in (PACKAGE / "readers").glob("*.py")
           if path.stem not in ("__init__", "spans", "json_records")}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("albert_ner"):
                for alias in node.names:  # `from albert_ner.readers import brat` imports the module brat
                    candidate = f"{node.module}.{alias.name}"
                    targets.add(candidate if candidate in modules else node.module)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names if alias.name.startswith("albert_ner"))
        graph[name] = {target for target in targets if target in modules and target != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle as the list of modules along it, or None (depth-first search with colours)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 40 and "albert_ner.training" in graph
    assert find_cycle(graph) is None


def test_only_the_readers_and_the_channel_walk_import_a_format_reader() -> None:
    assert "albert_ner.readers.conll" in READERS and "albert_ner.readers.label_studio" in READERS
    importers = {name for name, targets in import_graph().items() if targets & READERS}
    assert importers == {"albert_ner.data"} | {name for name in importers if name.startswith("albert_ner.readers.")}


def test_the_data_types_import_nothing_of_the_project() -> None:
    assert import_graph()["albert_ner.sentences"] == set()


def test_one_front_door() -> None:
    """Only cli.py has a command line; it hands --base-dir to the job instead of writing os.environ."""
    for module in ("export", "calibration"):
        tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
        assert not any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body), module
    cli = ast.parse((PACKAGE / "cli.py").read_text(encoding="utf-8"))
    writes = [node for node in ast.walk(cli) if isinstance(node, (ast.Assign, ast.AugAssign))
              for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
              if isinstance(target, ast.Subscript) and ast.unparse(target.value) == "os.environ"]
    assert not writes
