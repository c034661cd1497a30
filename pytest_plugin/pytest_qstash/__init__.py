"""pytest plugin for the QStash emulator: fixtures, time control and delivery assertions.

Installed with the package and loaded by pytest on its own (a `pytest11` entry point). The
fixtures live in `pytest_qstash.plugin`; the objects tests get are exported here for typing.
"""

from qstash_emulator.http.capture import Captured, Reply
from qstash_emulator.llm import LLMEngine, LLMErrorSpec

from .assertions import Query
from .config import Settings, UserSpec
from .harness import CaptureHandle, QStashHarness
from .records import DeliveredMessage
from .workflows import WorkflowRunInfo, WorkflowStep

__all__ = [
    "CaptureHandle",
    "Captured",
    "DeliveredMessage",
    "LLMEngine",
    "LLMErrorSpec",
    "QStashHarness",
    "Query",
    "Reply",
    "Settings",
    "UserSpec",
    "WorkflowRunInfo",
    "WorkflowStep",
]
