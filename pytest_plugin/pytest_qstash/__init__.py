"""pytest plugin for the QStash emulator: fixtures, time control and delivery assertions.

Installed with the package and loaded by pytest on its own (a `pytest11` entry point). The
fixtures live in `pytest_qstash.plugin`; the objects tests get are exported here for typing.

pytest imports this package in every run where it is installed, so the exports are loaded on
first use (PEP 562): `import pytest_qstash` imports neither the emulator nor aiohttp.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qstash_emulator.controls.captures import Captured, Reply
    from qstash_emulator.core.scheduler import NotIdleError
    from qstash_emulator.llm import LLMEngine, LLMErrorSpec

    from .assertions import Query
    from .config import Settings, UserSpec
    from .harness import CaptureHandle, QStashHarness
    from .records import DeliveredMessage
    from .workflows import WorkflowRunInfo, WorkflowStep

# name -> the module that defines it (absolute, or relative to this package)
_EXPORTS = {
    "CaptureHandle": ".harness",
    "Captured": "qstash_emulator.controls.captures",
    "DeliveredMessage": ".records",
    "LLMEngine": "qstash_emulator.llm",
    "LLMErrorSpec": "qstash_emulator.llm",
    "NotIdleError": "qstash_emulator.core.scheduler",
    "QStashHarness": ".harness",
    "Query": ".assertions",
    "Reply": "qstash_emulator.controls.captures",
    "Settings": ".config",
    "UserSpec": ".config",
    "WorkflowRunInfo": ".workflows",
    "WorkflowStep": ".workflows",
}

__all__ = [
    "CaptureHandle",
    "Captured",
    "DeliveredMessage",
    "LLMEngine",
    "LLMErrorSpec",
    "NotIdleError",
    "QStashHarness",
    "Query",
    "Reply",
    "Settings",
    "UserSpec",
    "WorkflowRunInfo",
    "WorkflowStep",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
