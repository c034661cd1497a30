"""Shared helpers for the LLM engine tests (a uniquely named module, importable from tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qstash_emulator.llm import LLAMA_3_8B

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "llm"
NOW = 1717483987.25


def body(text: str = "What is the capital of Turkey?", **extra: Any) -> dict[str, Any]:
    """A minimal chat request for the Llama model with one user message."""
    return {"model": LLAMA_3_8B, "messages": [{"role": "user", "content": text}], **extra}


def content(outcome: Any, index: int = 0) -> Any:
    return outcome.body["choices"][index]["message"]["content"]
