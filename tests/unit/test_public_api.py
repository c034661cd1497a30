"""Every module of the emulator and the plugin declares its public names in `__all__`, and ruff
enforces Google-style docstrings on them (issue 9, items 4 and 6)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("qstash_emulator", "pytest_qstash")


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        root = importlib.import_module(package)
        names.append(package)
        for info in pkgutil.walk_packages(root.__path__, package + "."):
            if not info.name.endswith("__main__"):
                names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_module_declares_all(name: str) -> None:
    module: ModuleType = importlib.import_module(name)
    exported = module.__dict__.get("__all__")
    assert isinstance(exported, list), f"{name} has no __all__ list"
    assert all(isinstance(n, str) for n in exported)
    assert len(exported) == len(set(exported)), f"{name}.__all__ repeats a name"
    private = [n for n in exported if n.startswith("_")]
    assert not private, f"{name}.__all__ exports private names {private}"
    # getattr, not __dict__: a package may load its exports lazily (PEP 562).
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"


def test_ruff_checks_docstrings_of_the_packages_only() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert "D" in config["select"]
    assert config["pydocstyle"]["convention"] == "google"
    # Public classes, methods, functions and nested classes must have docstrings.
    assert not {"D101", "D102", "D103", "D106"} & set(config.get("ignore", []))
    for tree in ("tests/**", "examples/**", "benchmarks/**"):
        assert config["per-file-ignores"][tree] == ["D"]
