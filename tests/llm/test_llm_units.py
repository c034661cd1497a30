"""Building blocks: token counter, shaping, hashing, logprobs, thread safety, serializability."""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

import pytest
from llm_helpers import NOW, body
from qstash_emulator.llm import LLMEngine, count_tokens, split_tokens
from qstash_emulator.llm.hashing import hex_id, int_seed, unit_float
from qstash_emulator.llm.logprobs import completion_logprobs
from qstash_emulator.llm.shaping import shape
from qstash_emulator.llm.tokens import count_message_tokens


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", []),
        ("Hello, world!", ["Hello", ",", " world", "!"]),
        ("What's up?", ["What", "'", "s", " up", "?"]),
        ("  two  spaces \n", ["  two", "  spaces", " \n"]),
        ("naïve café 42", ["naïve", " café", " 42"]),
    ],
)
def test_split_tokens_round_trips(text: str, tokens: list[str]) -> None:
    assert split_tokens(text) == tokens
    assert "".join(split_tokens(text)) == text
    assert count_tokens(text) == len(tokens)


def test_message_tokens_include_framing_and_images() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "text", "text": "Look"}, {"type": "image_url"}]},
        {"role": "user", "content": "Hi", "name": "bob"},
    ]
    assert count_message_tokens(messages) == (1 + 85) + (1 + 1) + 2 * 4 + 3


def test_shape_prefers_the_earliest_stop_sequence() -> None:
    shaped = shape("a, b. c", stop=[".", ","])
    assert (shaped.text, shaped.finish_reason, shaped.stop_reason) == ("a", "stop", ",")
    tie = shape("abc", stop=["bc", "b"])
    assert (tie.text, tie.stop_reason) == ("a", "bc")
    untouched = shape("a b", stop=["z"], max_tokens=5)
    assert (untouched.text, untouched.tokens, untouched.finish_reason) == (
        "a b",
        ["a", " b"],
        "stop",
    )


def test_hashing_is_stable() -> None:
    # Fixed expectations: these must never change between processes or releases.
    assert hex_id("a", 1) == hex_id("a", 1) != hex_id("a", 2)
    assert len(hex_id("x", length=10)) == 10
    assert int_seed({"b": 1, "a": 2}) == int_seed({"a": 2, "b": 1})  # key order irrelevant
    assert 0 <= unit_float("x") < 1
    # SHA-256 of the canonical JSON of the parts, independent of Python's salted hash().
    assert hex_id("fixed", 1) == hashlib.sha256(b'["fixed",1]').hexdigest()[:32]


def test_completion_logprobs_without_top() -> None:
    result = completion_logprobs(["a", " b"], 0, "key", offset=3)
    assert result["top_logprobs"] is None and result["text_offset"] == [3, 4]
    assert result["tokens"] == ["a", " b"] and len(result["token_logprobs"]) == 2


def test_outcomes_are_json_serializable(engine: LLMEngine) -> None:
    engine.reply(contains="tool", tool_calls=[{"name": "f", "arguments": {"x": 1}}])
    for request in (body(stream=True, logprobs=True, top_logprobs=2, n=2), body("tool")):
        outcome = engine.chat(request, now=NOW)
        json.dumps(outcome.body)
        json.dumps(outcome.chunks)


def test_concurrent_calls_consume_a_sequence_exactly_once_each() -> None:
    engine = LLMEngine()
    rule = engine.reply(sequence=[str(i) for i in range(40)], times=40)
    answers: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            outcome = engine.chat(body(), now=NOW)
            with lock:
                answers.append(outcome.body["choices"][0]["message"]["content"])

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers, key=int) == [str(i) for i in range(40)]
    assert rule.uses == 40 and len(engine.calls) == 40
