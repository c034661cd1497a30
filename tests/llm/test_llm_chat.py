"""Chat completions: response shape, determinism and the effect of every request parameter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from llm_helpers import NOW, body, content
from qstash_emulator.llm import (
    LLAMA_3_8B,
    MISTRAL_7B,
    LLMEngine,
    split_tokens,
    tokenizers,
)
from qstash_emulator.llm.tokenizers import ModelTokenizer, model_tokenizer


def test_response_has_openai_shape(engine: LLMEngine) -> None:
    outcome = engine.chat(body(), now=NOW)
    assert outcome.status == 200 and outcome.ok
    assert outcome.headers == {} and outcome.latency == 0.0 and outcome.chunks is None
    response = outcome.body
    assert list(response) == [
        "id", "object", "created", "model", "system_fingerprint", "choices", "usage",
    ]  # fmt: skip
    assert response["id"].startswith("chatcmpl-") and len(response["id"]) == 9 + 32
    assert response["object"] == "chat.completion"
    assert response["created"] == 1717483987
    assert response["model"] == LLAMA_3_8B
    [choice] = response["choices"]
    assert list(choice) == ["index", "message", "logprobs", "finish_reason", "stop_reason"]
    assert choice["index"] == 0
    assert choice["message"]["role"] == "assistant"
    assert list(choice["message"]) == ["role", "content"]
    assert isinstance(choice["message"]["content"], str) and choice["message"]["content"]
    assert (choice["logprobs"], choice["finish_reason"], choice["stop_reason"]) == (
        None,
        "stop",
        None,
    )
    usage = response["usage"]
    # Llama 3's own tokenizer over its chat template: <|begin_of_text|>, the user header
    # (<|start_header_id|>user<|end_header_id|>\n\n = 4), "What is the capital of Turkey?"
    # (7), <|eot_id|>, and the assistant header the reply follows (4).
    assert usage["prompt_tokens"] == 1 + 4 + 7 + 1 + 4
    assert usage["completion_tokens"] == llama3().count(choice["message"]["content"])
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_same_request_same_answer_new_id(engine: LLMEngine) -> None:
    first = engine.chat(body(), now=NOW)
    second = engine.chat(body(), now=NOW)
    assert content(first) == content(second)
    assert first.body["usage"] == second.body["usage"]
    assert first.body["id"] != second.body["id"]  # ids are unique per call...
    again = LLMEngine(seed=7)
    assert again.chat(body(), now=NOW).body == first.body  # ...and reproducible per run


def test_default_answer_depends_on_inputs(engine: LLMEngine) -> None:
    base = content(engine.chat(body(), now=NOW))
    assert content(engine.chat(body("Another question"), now=NOW)) != base
    assert content(engine.chat(body(model=MISTRAL_7B), now=NOW)) != base
    assert content(engine.chat(body(seed=1), now=NOW)) != base
    assert content(engine.chat(body(seed=1), now=NOW)) == content(
        engine.chat(body(seed=1), now=NOW)
    )
    assert content(LLMEngine(seed=8).chat(body(), now=NOW)) != base
    assert content(engine.chat(body(temperature=1.3), now=NOW)) != base
    assert content(engine.chat(body(top_p=0.5), now=NOW)) != base


def test_default_answer_is_the_same_in_another_process(engine: LLMEngine) -> None:
    script = (
        "import json\n"
        "from qstash_emulator.llm import LLMEngine, LLAMA_3_8B\n"
        "o = LLMEngine(seed=7).chat({'model': LLAMA_3_8B, 'seed': 3, 'messages': "
        "[{'role': 'user', 'content': 'hi'}]}, now=0)\n"
        "print(json.dumps(o.body))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    here = LLMEngine(seed=7).chat(body("hi", seed=3), now=0)
    assert json.loads(result.stdout) == here.body


def test_temperature_zero_is_greedy(engine: LLMEngine) -> None:
    greedy = engine.chat(body(temperature=0, n=3, seed=1), now=NOW)
    texts = {c["message"]["content"] for c in greedy.body["choices"]}
    assert len(texts) == 1  # the same best path for every choice...
    assert content(engine.chat(body(temperature=0, seed=99), now=NOW)) in texts  # ...any seed


def test_n_gives_distinct_choices(engine: LLMEngine) -> None:
    outcome = engine.chat(body(n=3), now=NOW)
    choices = outcome.body["choices"]
    assert [c["index"] for c in choices] == [0, 1, 2]
    assert len({c["message"]["content"] for c in choices}) == 3
    assert outcome.body["usage"]["completion_tokens"] == sum(
        llama3().count(c["message"]["content"]) for c in choices
    )


def test_max_tokens_truncates_with_length(engine: LLMEngine) -> None:
    full = content(engine.chat(body(), now=NOW))
    outcome = engine.chat(body(max_tokens=3), now=NOW)
    text = content(outcome)
    assert text == "".join(split_tokens(full)[:3])
    assert outcome.body["choices"][0]["finish_reason"] == "length"
    assert outcome.body["usage"]["completion_tokens"] == 3
    newer = engine.chat(body(max_completion_tokens=2, max_tokens=5), now=NOW)
    assert newer.body["usage"]["completion_tokens"] == 2


def test_max_tokens_larger_than_answer_stops_naturally(engine: LLMEngine) -> None:
    engine.reply(content="Two words")
    outcome = engine.chat(body(max_tokens=2), now=NOW)
    assert content(outcome) == "Two words"
    assert outcome.body["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("stop", ["is", ["zzz", "is"], ["Ankara", "is"]])
def test_stop_cuts_before_the_stop_sequence(engine: LLMEngine, stop: Any) -> None:
    engine.reply(content="The capital of Turkey is Ankara.")
    choice = engine.chat(body(stop=stop), now=NOW).body["choices"][0]
    assert choice["message"]["content"] == "The capital of Turkey "
    assert choice["finish_reason"] == "stop"
    assert choice["stop_reason"] == "is"


def test_stop_after_max_tokens_is_never_reached(engine: LLMEngine) -> None:
    engine.reply(content="The capital of Turkey is Ankara.")
    choice = engine.chat(body(stop="Ankara", max_tokens=2), now=NOW).body["choices"][0]
    assert choice["message"]["content"] == "The capital"
    assert (choice["finish_reason"], choice["stop_reason"]) == ("length", None)


def test_logprobs_shape_and_determinism(engine: LLMEngine) -> None:
    engine.reply(content="Ankara is the capital.")
    outcome = engine.chat(body(logprobs=True, top_logprobs=3), now=NOW)
    logprobs = outcome.body["choices"][0]["logprobs"]
    assert set(logprobs) == {"content", "refusal"}
    entries = logprobs["content"]
    assert [e["token"] for e in entries] == ["Ankara", " is", " the", " capital", "."]
    for entry in entries:
        assert set(entry) == {"token", "logprob", "bytes", "top_logprobs"}
        assert entry["bytes"] == list(entry["token"].encode())
        assert -1.0 <= entry["logprob"] < 0
        tops = entry["top_logprobs"]
        assert len(tops) == 3 and tops[0]["token"] == entry["token"]
        assert [t["logprob"] for t in tops] == sorted((t["logprob"] for t in tops), reverse=True)
        assert sum(2.718281828 ** t["logprob"] for t in tops) < 1.0
    again = engine.chat(body(logprobs=True, top_logprobs=3), now=NOW)
    assert again.body["choices"][0]["logprobs"] == logprobs
    plain = engine.chat(body(logprobs=True), now=NOW).body["choices"][0]["logprobs"]["content"]
    assert [e["top_logprobs"] for e in plain] == [[]] * 5
    assert [e["logprob"] for e in plain] == [e["logprob"] for e in entries]


def test_json_object_mode_gives_valid_json(engine: LLMEngine) -> None:
    outcome = engine.chat(body(response_format={"type": "json_object"}, n=2), now=NOW)
    for choice in outcome.body["choices"]:
        value = json.loads(choice["message"]["content"])
        assert isinstance(value, dict) and set(value) == {"answer", "confidence", "topics"}
    text = content(engine.chat(body(response_format={"type": "text"}), now=NOW))
    assert text == content(engine.chat(body(), now=NOW))


def test_json_schema_mode_follows_the_schema(engine: LLMEngine) -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "population": {"type": "integer", "minimum": 1000, "maximum": 2000},
            "capital": {"type": "boolean"},
            "kind": {"enum": ["big", "small"]},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2},
            "when": {"type": "string", "format": "date"},
            "nested": {"$ref": "#/$defs/Point"},
        },
        "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "number"}}}},
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "city", "schema": schema}}
    value = json.loads(content(engine.chat(body(response_format=response_format), now=NOW)))
    assert set(value) == set(schema["properties"])
    assert isinstance(value["city"], str) and value["city"]
    assert 1000 <= value["population"] <= 2000
    assert isinstance(value["capital"], bool) and value["kind"] in ("big", "small")
    assert len(value["tags"]) == 2 and len(value["when"]) == 10
    assert isinstance(value["nested"]["x"], float)


def test_tool_choice_required_calls_a_tool_with_schema_arguments(engine: LLMEngine) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                },
            },
        }
    ]
    outcome = engine.chat(body(tools=tools, tool_choice="required"), now=NOW)
    choice = outcome.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"]["name"] == "get_weather"
    arguments = json.loads(call["function"]["arguments"])
    assert set(arguments) == {"city", "days"} and isinstance(arguments["days"], int)
    auto = engine.chat(body(tools=tools), now=NOW).body["choices"][0]
    assert "tool_calls" not in auto["message"] and auto["finish_reason"] == "stop"
    # Tool definitions count towards the prompt.
    assert outcome.body["usage"]["prompt_tokens"] > 14


def test_stream_chunks(engine: LLMEngine) -> None:
    engine.reply(content="The capital of Turkey is Ankara.")
    outcome = engine.chat(body(stream=True), now=NOW)
    assert outcome.chunks is not None
    chunks = outcome.chunks
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert {c["id"] for c in chunks} == {outcome.body["id"]}
    assert all(c["created"] == 1717483987 and c["model"] == LLAMA_3_8B for c in chunks)
    assert all("usage" not in c for c in chunks)
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert [d["content"] for d in deltas[1:-1]] == split_tokens("The capital of Turkey is Ankara.")
    # The hosted models' server ends with an empty content beside the finish reason ...
    assert deltas[-1] == {"content": ""}
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None] * (len(chunks) - 1) + [
        "stop"
    ]
    # The body holds the equivalent non-streamed response for the record.
    assert content(outcome) == "The capital of Turkey is Ankara."
    # ... OpenAI (any other provider) with an empty delta.
    other = engine.chat(body(stream=True), now=NOW, provider="openai")
    assert other.chunks is not None and other.chunks[-1]["choices"][0]["delta"] == {}


def test_stream_include_usage_adds_a_usage_chunk(engine: LLMEngine) -> None:
    outcome = engine.chat(body(stream=True, stream_options={"include_usage": True}), now=NOW)
    assert outcome.chunks is not None
    *rest, last = outcome.chunks
    assert last["choices"] == [] and last["usage"] == outcome.body["usage"]
    assert all(c["usage"] is None for c in rest)


def test_stream_with_n_interleaves_choices(engine: LLMEngine) -> None:
    engine.reply(content="a b")
    outcome = engine.chat(body(stream=True, n=2), now=NOW)
    assert outcome.chunks is not None
    indexes = [c["choices"][0]["index"] for c in outcome.chunks]
    assert indexes == [0, 1, 0, 1, 0, 1, 0, 1]


def test_stream_logprobs_match_the_tokens_of_each_delta(engine: LLMEngine) -> None:
    engine.reply(content="one two three", chunks=2)
    outcome = engine.chat(body(stream=True, logprobs=True), now=NOW)
    assert outcome.chunks is not None
    streamed = [
        entry["token"]
        for c in outcome.chunks
        if c["choices"][0]["logprobs"]
        for entry in c["choices"][0]["logprobs"]["content"]
    ]
    assert streamed == ["one", " two", " three"]
    full = outcome.body["choices"][0]["logprobs"]["content"]
    streamed_values = [
        entry["logprob"]
        for c in outcome.chunks
        if c["choices"][0]["logprobs"]
        for entry in c["choices"][0]["logprobs"]["content"]
    ]
    assert streamed_values == [e["logprob"] for e in full]


def test_sampling_parameters_in_range_are_accepted(engine: LLMEngine) -> None:
    outcome = engine.chat(
        body(
            temperature=2,
            top_p=0,
            frequency_penalty=-2,
            presence_penalty=2,
            logit_bias={"50256": -100, "15": 100},
            seed=5,
            user="someone",
            unknown_future_parameter=True,
        ),
        now=NOW,
    )
    assert outcome.status == 200
    penalised = content(engine.chat(body(frequency_penalty=1.5), now=NOW))
    assert penalised != content(engine.chat(body(), now=NOW))


def llama3() -> ModelTokenizer:
    found = model_tokenizer(LLAMA_3_8B)
    assert found is not None, "quicktok-v1 (the [tokenizers] extra) is part of the test install"
    return found


def test_prompt_tokens_count_every_message(
    engine: LLMEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokenizers, "enabled", False)  # the approximation without the extra
    messages = [
        {"role": "system", "content": "Be brief."},  # 3 tokens
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]},  # 1
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },  # f + { + } = 3
        {"role": "tool", "tool_call_id": "c", "content": "ok"},  # 1
    ]
    outcome = engine.chat({"model": LLAMA_3_8B, "messages": messages}, now=NOW)
    assert outcome.body["usage"]["prompt_tokens"] == 3 + 1 + 3 + 1 + 4 * 4 + 3


@pytest.mark.parametrize("provider", ["openai", "custom", "OpenAI"])
def test_other_providers_accept_any_model(engine: LLMEngine, provider: str) -> None:
    outcome = engine.chat(body(model="gpt-4o-mini"), now=NOW, provider=provider)
    assert outcome.status == 200 and outcome.body["model"] == "gpt-4o-mini"
    assert engine.calls[-1].provider == provider.lower()
