"""Scripted rules from Python: matching, answers, sequences, limits, errors, latency, chunks."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from llm_helpers import NOW, body, content
from qstash_emulator.llm import LLAMA_3_8B, MISTRAL_7B, LLMEngine, LLMErrorSpec


def conversation(*turns: tuple[str, str]) -> dict[str, Any]:
    return {"model": LLAMA_3_8B, "messages": [{"role": r, "content": c} for r, c in turns]}


def test_contains_matches_the_last_user_message(engine: LLMEngine) -> None:
    rule = engine.reply(contains="weather", content="Sunny")
    outcome = engine.chat(body("How is the weather?"), now=NOW)
    assert content(outcome) == "Sunny"
    assert engine.calls[-1].rule is rule and rule.uses == 1
    # Case-sensitive, and only the last user message by default.
    assert content(engine.chat(body("WEATHER?"), now=NOW)) != "Sunny"
    older = conversation(("user", "weather?"), ("assistant", "?"), ("user", "thanks"))
    assert content(engine.chat(older, now=NOW)) != "Sunny"
    assert engine.calls[-1].rule is None and rule.uses == 1


def test_regex_matches_with_search(engine: LLMEngine) -> None:
    engine.reply(regex=r"(?i)capital of \w+", content="Ankara")
    engine.reply(regex=re.compile(r"^\d+$"), content="a number")
    assert content(engine.chat(body("What is the CAPITAL of Turkey?"), now=NOW)) == "Ankara"
    assert content(engine.chat(body("12345"), now=NOW)) == "a number"
    assert content(engine.chat(body("x12345"), now=NOW)) not in ("Ankara", "a number")


@pytest.mark.parametrize(
    ("target", "matching"),
    [
        ("last", conversation(("user", "q"), ("assistant", "a"), ("user", "needle"))),
        ("system", conversation(("system", "needle rules"), ("user", "q"))),
        ("all", conversation(("user", "needle"), ("assistant", "a"), ("user", "q"))),
        ("last_user", conversation(("user", "needle"), ("assistant", "not here"))),
    ],
)
def test_targets(engine: LLMEngine, target: str, matching: dict[str, Any]) -> None:
    engine.reply(contains="needle", target=target, content="found")
    assert content(engine.chat(matching, now=NOW)) == "found"
    miss = conversation(("user", "nothing"), ("assistant", "needle"), ("user", "q"))
    expected_miss = target != "all"
    assert (content(engine.chat(miss, now=NOW)) != "found") is expected_miss


def test_model_role_provider_and_positions(engine: LLMEngine) -> None:
    engine.reply(model=MISTRAL_7B, content="mistral")
    engine.reply(role="tool", content="after tool")
    engine.reply(provider="openai", content="openai")
    engine.reply(message_count=3, content="three messages")
    engine.reply(turn=2, content="second turn")
    assert content(engine.chat(body(model=MISTRAL_7B), now=NOW)) == "mistral"
    tool = conversation(("user", "q"))
    tool["messages"].append({"role": "tool", "tool_call_id": "1", "content": "r"})
    assert content(engine.chat(tool, now=NOW)) == "after tool"
    assert content(engine.chat(body(model="gpt-4o"), now=NOW, provider="OpenAI")) == "openai"
    three = conversation(("system", "s"), ("user", "q"), ("assistant", "a"))
    assert content(engine.chat(three, now=NOW)) == "three messages"
    second = conversation(("user", "q"), ("assistant", "a"), ("user", "q2"), ("assistant", "b"))
    assert content(engine.chat(second, now=NOW)) == "second turn"


def test_all_match_keys_must_hold(engine: LLMEngine) -> None:
    engine.reply(model=[MISTRAL_7B], contains="hi", content="both")
    assert content(engine.chat(body("hi"), now=NOW)) != "both"
    assert content(engine.chat(body("hi", model=MISTRAL_7B), now=NOW)) == "both"


def test_first_matching_rule_wins(engine: LLMEngine) -> None:
    first = engine.reply(contains="a", content="first")
    engine.reply(contains="a", content="second")
    assert content(engine.chat(body("a"), now=NOW)) == "first"
    assert [r.uses for r in engine.rules] == [1, 0] and engine.rules[0] is first


def test_times_retires_a_rule(engine: LLMEngine) -> None:
    rule = engine.reply(content="limited", times=2)
    engine.reply(content="fallback")
    answers = [content(engine.chat(body(), now=NOW)) for _ in range(4)]
    assert answers == ["limited", "limited", "fallback", "fallback"]
    assert rule.exhausted and rule.uses == 2


def test_sequence_steps_then_last_repeats(engine: LLMEngine) -> None:
    engine.reply(
        regex="plan",
        sequence=["a", {"json": {"step": 2}}, None, LLMErrorSpec(status=503), "last"],
    )
    outcomes = [engine.chat(body("plan"), now=NOW) for _ in range(7)]
    assert content(outcomes[0]) == "a"
    assert json.loads(content(outcomes[1])) == {"step": 2}
    default = content(LLMEngine(seed=7).chat(body("plan"), now=NOW))
    assert content(outcomes[2]) == default  # None = the default answer
    assert outcomes[3].status == 503
    assert [content(o) for o in outcomes[4:]] == ["last", "last", "last"]


def test_sequence_with_times_runs_once(engine: LLMEngine) -> None:
    engine.reply(sequence=["x", "y"], times=2)
    answers = [content(engine.chat(body(), now=NOW)) for _ in range(3)]
    assert answers[:2] == ["x", "y"] and answers[2] not in ("x", "y")


def test_json_answer_is_serialized(engine: LLMEngine) -> None:
    engine.reply(json={"city": "Ankara", "population": 5_700_000})
    assert json.loads(content(engine.chat(body(), now=NOW))) == {
        "city": "Ankara",
        "population": 5_700_000,
    }


def test_tool_calls_answer(engine: LLMEngine) -> None:
    engine.reply(
        contains="weather",
        tool_calls=[
            {"name": "get_weather", "arguments": {"city": "Paris"}},
            {
                "id": "call_fixed",
                "type": "function",
                "function": {"name": "now", "arguments": "{}"},
            },
        ],
    )
    outcome = engine.chat(body("weather?"), now=NOW)
    choice = outcome.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    first, second = choice["message"]["tool_calls"]
    assert first["type"] == "function" and re.fullmatch(r"call_[0-9a-f]{24}", first["id"])
    assert first["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert second == {
        "id": "call_fixed",
        "type": "function",
        "function": {"name": "now", "arguments": "{}"},
    }
    assert outcome.body["usage"]["completion_tokens"] > 0


def test_tool_calls_stream(engine: LLMEngine) -> None:
    engine.reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
    outcome = engine.chat(body(stream=True), now=NOW)
    assert outcome.chunks is not None
    deltas = [c["choices"][0]["delta"] for c in outcome.chunks]
    assert deltas[0] == {"role": "assistant", "content": None}
    header = deltas[1]["tool_calls"][0]
    assert header["index"] == 0 and header["id"].startswith("call_")
    assert header["function"] == {"name": "get_weather", "arguments": ""}
    arguments = "".join(d["tool_calls"][0]["function"]["arguments"] for d in deltas[2:-1])
    assert arguments == '{"city": "Paris"}'
    assert outcome.chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_error_answer_with_rate_limit_headers(engine: LLMEngine) -> None:
    headers = {
        "x-ratelimit-limit-requests": "100",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "12s",
        "x-ratelimit-reset-tokens": "3s",
    }
    rule = engine.reply(model=LLAMA_3_8B, error=LLMErrorSpec(status=429, headers=headers), times=1)
    limited = engine.chat(body(stream=True), now=NOW)
    assert limited.status == 429 and not limited.ok and limited.chunks is None
    assert limited.headers == headers
    assert limited.body == {
        "error": {
            "message": "Rate limit reached for requests. Please try again later.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    assert engine.calls[-1].rule is rule and engine.calls[-1].outcome is limited
    assert engine.chat(body(), now=NOW).status == 200  # times=1: the retry succeeds


def test_rate_limited_helper() -> None:
    spec = LLMErrorSpec.rate_limited(limit_requests=5, reset_requests="30s", reset_tokens="2s")
    assert spec.status == 429
    assert spec.headers == {
        "x-ratelimit-limit-requests": "5",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "30s",
        "x-ratelimit-limit-tokens": "100000",
        "x-ratelimit-remaining-tokens": "100000",
        "x-ratelimit-reset-tokens": "2s",
    }


def test_error_shorthands_and_custom_body(engine: LLMEngine) -> None:
    engine.reply(contains="500", error=500)
    engine.reply(contains="mapping", error={"status": 401, "message": "bad key"})
    engine.reply(contains="raw", error=LLMErrorSpec(status=418, body={"detail": "teapot"}))
    engine.reply(contains="odd", error=499)
    server = engine.chat(body("500"), now=NOW)
    assert server.status == 500 and server.body["error"]["type"] == "server_error"
    auth = engine.chat(body("mapping"), now=NOW)
    assert auth.status == 401
    assert auth.body["error"] == {
        "message": "bad key",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
    raw = engine.chat(body("raw"), now=NOW)
    assert (raw.status, raw.body) == (418, {"detail": "teapot"})
    assert engine.chat(body("odd"), now=NOW).body["error"]["message"] == "HTTP 499"


def test_latency_and_headers_are_returned(engine: LLMEngine) -> None:
    engine.reply(contains="slow", latency=12.5, headers={"x-request-id": 42})
    engine.reply(contains="default text but delayed", latency=3)
    slow = engine.chat(body("slow"), now=NOW)
    assert slow.latency == 12.5 and slow.headers == {"x-request-id": "42"}
    delayed = engine.chat(body("default text but delayed"), now=NOW)
    assert delayed.latency == 3.0
    fresh = LLMEngine(seed=7).chat(body("default text but delayed"), now=NOW)
    assert content(delayed) == content(fresh)  # no content given: the default answer
    assert LLMEngine(default_latency=0.5).chat(body(), now=NOW).latency == 0.5


def test_chunking_by_token_count_and_explicit_deltas(engine: LLMEngine) -> None:
    engine.reply(contains="count", content="one two three four five", chunks=2)
    engine.reply(contains="explicit", chunks=["Hel", "lo wor", "ld!"])
    counted = engine.chat(body("count", stream=True), now=NOW).chunks
    assert counted is not None
    assert [c["choices"][0]["delta"].get("content") for c in counted[1:-1]] == [
        "one two", " three four", " five",
    ]  # fmt: skip
    explicit = engine.chat(body("explicit", stream=True), now=NOW)
    assert explicit.chunks is not None
    assert [c["choices"][0]["delta"]["content"] for c in explicit.chunks[1:-1]] == [
        "Hel", "lo wor", "ld!",
    ]  # fmt: skip
    assert content(explicit) == "Hello world!"
    # Explicit deltas are cut where max_tokens cut the text.
    cut = engine.chat(body("explicit", stream=True, max_tokens=1), now=NOW).chunks
    assert cut is not None
    assert [c["choices"][0]["delta"]["content"] for c in cut[1:-1]] == ["Hel", "lo"]


def test_finish_reason_override(engine: LLMEngine) -> None:
    engine.reply(content="[filtered]", finish_reason="content_filter")
    assert engine.chat(body(), now=NOW).body["choices"][0]["finish_reason"] == "content_filter"


def test_scripted_content_is_shared_by_all_choices(engine: LLMEngine) -> None:
    rule = engine.reply(sequence=["first", "second"])
    choices = engine.chat(body(n=3), now=NOW).body["choices"]
    assert [c["message"]["content"] for c in choices] == ["first"] * 3
    assert rule.uses == 1  # one request consumes one step


def test_reset_clears_rules_progress_and_calls(engine: LLMEngine) -> None:
    engine.reply(content="scripted")
    first = engine.chat(body(), now=NOW)
    engine.reset()
    assert engine.rules == [] and engine.calls == [] and engine.last_call is None
    after = engine.chat(body(), now=NOW)
    assert content(after) != "scripted"
    assert after.body["id"] == first.body["id"]  # ids restart too: a reset run replays


def test_calls_record_request_rule_and_outcome(engine: LLMEngine) -> None:
    rule = engine.reply(content="ok", name="greeting")
    request = body("hello")
    outcome = engine.chat(request, now=NOW)
    request["messages"].append({"role": "user", "content": "mutated later"})
    call = engine.last_call
    assert call is not None
    assert call.endpoint == "chat" and call.now == NOW and call.provider == "upstash"
    assert call.rule is rule and call.outcome is outcome
    assert call.body == body("hello")  # a copy, unaffected by later mutation
    assert repr(rule) == "<Rule 'greeting' uses=1 times=None>"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"content": "a", "json": {}},
        {"content": "a", "error": 500},
        {"sequence": ["a"], "content": "b"},
        {"sequence": []},
        {"sequence": "abc"},
        {"sequence": [{"unknown": 1}]},
        {"sequence": [3]},
        {"tool_calls": []},
        {"tool_calls": [{"arguments": {}}]},
        {"chunks": 0},
        {"chunks": ["a", 1]},
        {"content": "abc", "chunks": ["a", "b"]},
        {"latency": -1},
        {"finish_reason": "done"},
        {"target": "first"},
        {"endpoint": "speech"},
        {"times": 0},
        {"turn": True},
        {"contains": 3},
        {"model": []},
        {"error": "boom"},
        {"error": {"status": 200}},
        {"error": {"status": 429, "retry": 1}},
        {"endpoint": "embeddings", "content": "vectors?"},
    ],
)
def test_invalid_rules_are_rejected(engine: LLMEngine, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        engine.reply(**kwargs)
    assert engine.rules == []
