"""Invalid chat requests get OpenAI's error body, status and (where it has one) code."""

from __future__ import annotations

from typing import Any

import pytest
from llm_helpers import NOW, body
from qstash_emulator.llm import LLAMA_3_8B, LLMEngine

USER = [{"role": "user", "content": "hi"}]

CASES: list[tuple[str, Any, str | None, str | None]] = [
    # (case, request body, param, code)
    ("not an object", ["x"], None, "invalid_type"),
    ("no model", {"messages": USER}, "model", "missing_required_parameter"),
    ("model not a string", {"model": 3, "messages": USER}, "model", "invalid_type"),
    ("no messages", {"model": LLAMA_3_8B}, "messages", "missing_required_parameter"),
    ("empty messages", {"model": LLAMA_3_8B, "messages": []}, "messages", "empty_array"),
    ("messages not a list", {"model": LLAMA_3_8B, "messages": "hi"}, "messages", "invalid_type"),
    (
        "message not an object",
        {"model": LLAMA_3_8B, "messages": ["hi"]},
        "messages[0]",
        "invalid_type",
    ),
    (
        "no role",
        {"model": LLAMA_3_8B, "messages": [{"content": "x"}]},
        "messages[0].role",
        "missing_required_parameter",
    ),
    (
        "bad role",
        {"model": LLAMA_3_8B, "messages": [{"role": "robot", "content": "x"}]},
        "messages[0].role",
        "invalid_value",
    ),
    (
        "no content",
        {"model": LLAMA_3_8B, "messages": [{"role": "user"}]},
        "messages[0].content",
        "missing_required_parameter",
    ),
    (
        "content wrong type",
        {"model": LLAMA_3_8B, "messages": [{"role": "user", "content": 5}]},
        "messages[0].content",
        "invalid_type",
    ),
    (
        "tool without id",
        {"model": LLAMA_3_8B, "messages": [{"role": "tool", "content": "x"}]},
        "messages[0].tool_call_id",
        "missing_required_parameter",
    ),
    ("temperature too high", body(temperature=2.5), "temperature", "decimal_above_max_value"),
    ("temperature negative", body(temperature=-0.1), "temperature", "decimal_below_min_value"),
    ("temperature string", body(temperature="hot"), "temperature", "invalid_type"),
    ("top_p above 1", body(top_p=1.01), "top_p", "decimal_above_max_value"),
    (
        "frequency_penalty low",
        body(frequency_penalty=-2.1),
        "frequency_penalty",
        "decimal_below_min_value",
    ),
    (
        "presence_penalty high",
        body(presence_penalty=2.1),
        "presence_penalty",
        "decimal_above_max_value",
    ),
    ("logit_bias value", body(logit_bias={"1": 101}), "logit_bias.1", "decimal_above_max_value"),
    ("logit_bias key", body(logit_bias={"abc": 1}), "logit_bias", "invalid_value"),
    ("logit_bias type", body(logit_bias=[1]), "logit_bias", "invalid_type"),
    ("n zero", body(n=0), "n", "integer_below_min_value"),
    ("n bool", body(n=True), "n", "invalid_type"),
    ("n decimal", body(n=1.5), "n", "invalid_type"),
    ("max_tokens zero", body(max_tokens=0), "max_tokens", "integer_below_min_value"),
    (
        "top_logprobs above 20",
        body(logprobs=True, top_logprobs=21),
        "top_logprobs",
        "integer_above_max_value",
    ),
    ("top_logprobs without logprobs", body(top_logprobs=2), "top_logprobs", "invalid_value"),
    ("logprobs not bool", body(logprobs="yes"), "logprobs", "invalid_type"),
    ("stream not bool", body(stream=1), "stream", "invalid_type"),
    (
        "stream_options without stream",
        body(stream_options={"include_usage": True}),
        "stream_options",
        "invalid_value",
    ),
    (
        "include_usage not bool",
        body(stream=True, stream_options={"include_usage": "y"}),
        "stream_options.include_usage",
        "invalid_type",
    ),
    ("seed not int", body(seed="7"), "seed", "invalid_type"),
    ("stop wrong type", body(stop=3), "stop", "invalid_type"),
    ("too many stops", body(stop=["a", "b", "c", "d", "e"]), "stop", "array_above_max_length"),
    (
        "response_format type",
        body(response_format={"type": "xml"}),
        "response_format.type",
        "invalid_value",
    ),
    ("response_format not object", body(response_format="json"), "response_format", "invalid_type"),
    (
        "json_schema missing",
        body(response_format={"type": "json_schema"}),
        "response_format.json_schema",
        "missing_required_parameter",
    ),
    ("tools not list", body(tools={}), "tools", "invalid_type"),
    (
        "tool without name",
        body(tools=[{"type": "function", "function": {}}]),
        "tools[0].function.name",
        "missing_required_parameter",
    ),
    ("tool_choice without tools", body(tool_choice="auto"), "tool_choice", "invalid_value"),
    (
        "tool_choice unknown",
        body(
            tools=[{"type": "function", "function": {"name": "f"}}],
            tool_choice={"type": "function", "function": {"name": "g"}},
        ),
        "tool_choice",
        "invalid_value",
    ),
]


@pytest.mark.parametrize(
    ("case", "request_body", "param", "code"), CASES, ids=[c[0] for c in CASES]
)
def test_invalid_requests(
    engine: LLMEngine, case: str, request_body: Any, param: str | None, code: str | None
) -> None:
    outcome = engine.chat(request_body, now=NOW)
    assert outcome.status == 400, case
    assert outcome.chunks is None
    error = outcome.body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert (error["param"], error["code"]) == (param, code)
    assert isinstance(error["message"], str) and error["message"]
    # Every call is recorded, with no rule.
    assert engine.calls[-1].outcome is outcome and engine.calls[-1].rule is None


def test_error_messages_read_like_openai(engine: LLMEngine) -> None:
    def message(request_body: Any) -> str:
        return str(engine.chat(request_body, now=NOW).body["error"]["message"])

    assert message({"model": LLAMA_3_8B}) == "Missing required parameter: 'messages'."
    assert message(body(temperature=3)) == (
        "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, "
        "but got 3 instead."
    )
    assert message({"model": LLAMA_3_8B, "messages": [{"role": "bot", "content": "x"}]}) == (
        "Invalid value: 'bot'. Supported values are: 'system', 'assistant', 'user', "
        "'function', 'tool', and 'developer'."
    )
    assert message(body(n="2")) == (
        "Invalid type for 'n': expected an integer, but got a string instead."
    )


def test_unknown_upstash_model_is_404(engine: LLMEngine) -> None:
    outcome = engine.chat(body(model="gpt-4o"), now=NOW)
    assert outcome.status == 404
    assert outcome.body == {
        "error": {
            "message": "The model `gpt-4o` does not exist or you do not have access to it.",
            "type": "invalid_request_error",
            "param": None,
            "code": "model_not_found",
        }
    }


def test_upstash_models_can_be_extended(engine: LLMEngine) -> None:
    engine.upstash_models["meta-llama/Llama-3.3-70B"] = (0, "upstash")
    assert engine.chat(body(model="meta-llama/Llama-3.3-70B"), now=NOW).status == 200


def test_context_window_is_enforced_for_upstash_models(engine: LLMEngine) -> None:
    outcome = engine.chat(body(max_tokens=8190), now=NOW)
    assert outcome.status == 400
    assert outcome.body["error"]["code"] == "context_length_exceeded"
    assert "maximum context length is 8192 tokens" in outcome.body["error"]["message"]
    # Mistral has a larger window; other providers have none.
    assert engine.chat(
        body(max_tokens=8190, model="mistralai/Mistral-7B-Instruct-v0.2"), now=NOW
    ).ok
    assert engine.chat(body(max_tokens=100000, model="gpt-4o"), now=NOW, provider="openai").ok


def test_null_optional_parameters_count_as_absent(engine: LLMEngine) -> None:
    outcome = engine.chat(
        body(temperature=None, n=None, stop=None, max_tokens=None, logprobs=None), now=NOW
    )
    assert outcome.status == 200 and len(outcome.body["choices"]) == 1


def test_assistant_message_with_tool_calls_may_omit_content(engine: LLMEngine) -> None:
    messages = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "tool_calls": [{"id": "1", "function": {"name": "w"}}]},
        {"role": "tool", "tool_call_id": "1", "content": "sunny"},
    ]
    assert engine.chat({"model": LLAMA_3_8B, "messages": messages}, now=NOW).status == 200
    bare = [{"role": "assistant"}]
    assert engine.chat({"model": LLAMA_3_8B, "messages": bare}, now=NOW).status == 400
