"""Tests of the pytest plugin itself. `pytester` runs inner test sessions in-process (and in a
subprocess for xdist)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # `pytest_plugins` is only allowed in the top-level conftest; register pytester here.
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")
