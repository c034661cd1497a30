"""Token counts of the hosted models: their own tokenizers (the [tokenizers] extra, shipped in
the wheels), and the approximation the emulator falls back to without them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from llm_helpers import NOW, body
from qstash_emulator.llm import LLAMA_3_8B, MISTRAL_7B, LLMEngine, count_tokens, tokenizers
from qstash_emulator.llm.tokenizers import model_tokenizer

ONE_WORD_20MB = "a" * 20_000_000
QUESTION = [{"role": "user", "content": "What is the capital of Turkey?"}]


def test_the_models_own_tokenizers_load_offline() -> None:
    """No download at run time: the vocabularies are in the wheels."""
    code = (
        "from qstash_emulator.llm.tokenizers import model_tokenizer as t\n"
        f"assert t({LLAMA_3_8B!r}) is not None\n"
        f"assert sys.version_info < (3, 11) or t({MISTRAL_7B!r}) is not None\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    subprocess.run([sys.executable, "-c", "import sys\n" + code], check=True, env=env)


def test_llama3_counts_with_its_own_vocabulary() -> None:
    llama3 = model_tokenizer(LLAMA_3_8B)
    assert llama3 is not None
    # Meta's ids for "Hello, world!" are [9906, 11, 1917, 0]: four tokens.
    assert llama3.count("Hello, world!") == 4
    assert llama3.truncate("Ankara is the capital.", 3) == "Ankara is"
    # The template: <|begin_of_text|>, a header of 4 around each role, <|eot_id|> after each.
    assert llama3.chat_prompt_tokens(QUESTION) == 1 + 4 + 7 + 1 + 4


@pytest.mark.skipif(sys.version_info < (3, 11), reason="mistral-common needs Python 3.11+")
def test_mistral_counts_with_its_own_vocabulary(engine: LLMEngine) -> None:
    mistral = model_tokenizer(MISTRAL_7B)
    assert mistral is not None
    # <s> [INST] What is the capital of Turkey? [/INST]: 1 + 3 + 7 + 4.
    assert mistral.chat_prompt_tokens(QUESTION) == 15
    outcome = engine.chat(body(model=MISTRAL_7B), now=NOW)
    usage = outcome.body["usage"]
    assert usage["prompt_tokens"] == 15
    assert usage["completion_tokens"] == mistral.count(
        outcome.body["choices"][0]["message"]["content"]
    )


@pytest.mark.parametrize("exact", [True, False], ids=["model tokenizer", "approximation"])
@pytest.mark.parametrize("model", [LLAMA_3_8B, MISTRAL_7B])
def test_a_huge_one_word_prompt_exceeds_the_context(
    engine: LLMEngine, monkeypatch: pytest.MonkeyPatch, exact: bool, model: str
) -> None:
    if exact and model == MISTRAL_7B and sys.version_info < (3, 11):
        pytest.skip("mistral-common needs Python 3.11+")
    monkeypatch.setattr(tokenizers, "enabled", exact)
    outcome = engine.chat(body(ONE_WORD_20MB, model=model), now=NOW)
    assert outcome.status == 400
    error = outcome.body["error"]
    assert error["code"] == "context_length_exceeded", error
    assert "maximum context length" in error["message"]


def test_the_approximation_counts_characters() -> None:
    assert count_tokens("The capital of Turkey is Ankara.") == 7  # words are one token each
    assert count_tokens(ONE_WORD_20MB) == 2_500_000  # as Llama 3's BPE counts a run of "a"
    assert count_tokens("internationalization") == 3
    assert count_tokens(" " * 20) == 3


def test_other_providers_keep_the_approximation(engine: LLMEngine) -> None:
    outcome = engine.chat(body(model="gpt-4o-mini"), now=NOW, provider="openai")
    # 7 tokens of text, 4 of framing per message, 3 priming the reply.
    assert outcome.body["usage"]["prompt_tokens"] == 7 + 4 + 3
