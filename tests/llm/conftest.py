from __future__ import annotations

import pytest
from qstash_emulator.llm import LLMEngine


@pytest.fixture
def engine() -> LLMEngine:
    return LLMEngine(seed=7)
