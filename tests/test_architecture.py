"""ARCHITECTURE.md stays true: every dotted name in its tables exists, and the package has no
module-level registries."""

from __future__ import annotations

import importlib
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "ARCHITECTURE.md").read_text()
NAMES = sorted(set(re.findall(r"`(qstash_emulator(?:\.\w+)+)`", DOC)))


def _resolve(dotted: str) -> object:
    parts = dotted.split(".")
    # The longest importable prefix is the module; the rest are attributes.
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            found = getattr(found, attr)
        return found
    raise ModuleNotFoundError(dotted)


def test_the_where_is_table_names_enough_places() -> None:
    assert len(NAMES) >= 20


@pytest.mark.parametrize("dotted", NAMES)
def test_every_name_in_architecture_md_exists(dotted: str) -> None:
    assert callable(_resolve(dotted)), dotted


def test_no_module_level_registries() -> None:
    found = subprocess.run(
        ["git", "grep", "-nE", r"_REGISTRY|_BY_ENGINE|\.of\(|_of\(engine", "emulator/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert found.stdout == ""


def _module_imports(path: Path, module: str, package: str) -> set[str]:
    """Modules of the package that `module` imports when it is loaded (not under
    TYPE_CHECKING, not inside functions)."""
    import ast

    tree = ast.parse(path.read_text())
    found: set[str] = set()
    base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            target = ".".join(
                base[: len(base) - node.level + 1] + ([node.module] if node.module else [])
            )
        else:
            target = node.module or ""
        if not target.startswith(package):
            continue
        for alias in node.names:
            sub = f"{target}.{alias.name}"
            found.add(
                sub if (ROOT / "emulator" / (sub.replace(".", "/") + ".py")).exists() else target
            )
    return found


def test_the_import_graph_has_no_cycle() -> None:
    src = ROOT / "emulator"
    graph: dict[str, set[str]] = {}
    for path in (src / "qstash_emulator").rglob("*.py"):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        module = ".".join(parts)
        graph[module] = _module_imports(path, module, "qstash_emulator")
    # A package's __init__ that re-exports its submodules is an edge down, not a cycle.
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt.startswith(node + "."):
                continue
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt] if nxt in stack else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []
