"""The README's plugin section, as a new user reads it: its examples run as written, and the
install line it gives (`qstash-emulator[pytest]`) brings every package they need."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli on 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
SECTION = "### In an app's test suite: the pytest plugin"
EXTRA = "pytest"
OWN = {"qstash_emulator", "pytest_qstash"}  # the package itself


def plugin_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.index("\n## ", start)
    return text[start:end]


def examples() -> list[str]:
    """The section's Python blocks that are whole test modules."""
    blocks = re.findall(r"```python\n(.*?)```", plugin_section(), re.DOTALL)
    return [block for block in blocks if re.search(r"^(async )?def test_", block, re.MULTILINE)]


def test_the_section_has_sync_and_async_examples() -> None:
    found = examples()
    assert any("\ndef test_" in "\n" + block for block in found)
    assert any("async def test_" in block for block in found)
    assert f"qstash-emulator[{EXTRA}]" in plugin_section()


def test_readme_plugin_examples_pass(pytester: pytest.Pytester) -> None:
    # pytest-asyncio's default (strict) mode: the example must say what it needs.
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    found = examples()
    for i, block in enumerate(found):
        pytester.makepyfile(**{f"test_readme_{i}": block})
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
    result.assert_outcomes(passed=len(found))


def required_distributions() -> set[str]:
    """What the examples import (beyond the standard library and this package), as
    distribution names, plus pytest-asyncio for `async def` tests."""
    names: set[str] = set()
    dists = packages_distributions()
    for block in examples():
        tree = ast.parse(block)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                modules = []
            for module in modules:
                top = module.partition(".")[0]
                if top in sys.stdlib_module_names or top in OWN:
                    continue
                assert top in dists, f"the README imports {top!r}, which no distribution provides"
                names.update(canonicalize_name(d) for d in dists[top])
        if any(isinstance(node, ast.AsyncFunctionDef) for node in ast.walk(tree)):
            names.add(canonicalize_name("pytest-asyncio"))
    return names


def declared(extra: str | None) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = project["dependencies"]
    if extra is not None:
        lines = lines + project["optional-dependencies"][extra]
    return {canonicalize_name(Requirement(line).name) for line in lines}


def test_the_pytest_extra_brings_what_the_examples_need() -> None:
    needed = required_distributions()
    assert {"qstash", "pytest-asyncio", "pytest"} <= needed  # what the examples use today
    assert needed - declared(EXTRA) == set()
    # The control: the base package alone does not (the failure a new user saw).
    assert needed - declared(None) >= {"qstash", "pytest-asyncio"}
