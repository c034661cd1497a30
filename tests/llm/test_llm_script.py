"""Rules loaded from the example script files under fixtures/llm/, and script errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from llm_helpers import FIXTURES, NOW, body, content
from qstash_emulator.llm import LLAMA_3_8B, MISTRAL_7B, LLMEngine, ScriptError


def test_weather_agent_script(engine: LLMEngine) -> None:
    rules = engine.load_script(FIXTURES / "weather_agent.yaml")
    assert [r.name for r in rules] == ["weather-final-answer", "weather-tool-call", "greeting"]
    question = body("What's the weather in Paris?")
    first = engine.chat(question, now=NOW)
    [call] = first.body["choices"][0]["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris", "unit": "celsius"}
    follow_up = dict(question)
    follow_up["messages"] = [
        *question["messages"],
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": '{"sky": "clear"}'},
    ]
    final = engine.chat({**follow_up, "stream": True}, now=NOW)
    assert content(final) == "It is sunny and 24 °C in Paris today."
    assert final.chunks is not None
    assert final.chunks[1]["choices"][0]["delta"]["content"] == "It is sunny"  # 3 tokens
    assert content(engine.chat(body("Hello there"), now=NOW)).startswith("Hello! Ask me")
    second_turn = {
        "model": LLAMA_3_8B,
        "messages": [
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi"},
            {"role": "user", "content": "Hello again"},
        ],
    }
    assert engine.calls[-1].rule is rules[2]
    engine.chat(second_turn, now=NOW)
    assert engine.calls[-1].rule is None  # the greeting is for turn 1 only


def test_rate_limits_script(engine: LLMEngine) -> None:
    engine.load_script(FIXTURES / "rate_limits.yaml")
    limited = engine.chat(body(model=MISTRAL_7B), now=NOW)
    assert limited.status == 429
    assert limited.headers["x-ratelimit-reset-requests"] == "30s"
    assert limited.headers["x-ratelimit-limit-requests"] == "10"  # YAML numbers become strings
    assert limited.body["error"]["message"] == "Rate limit reached for requests"
    assert engine.chat(body(model=MISTRAL_7B), now=NOW).status == 200
    statuses = [engine.chat(body("please summarize"), now=NOW).status for _ in range(4)]
    assert statuses == [503, 500, 200, 200]
    assert engine.calls[-3].outcome.body["error"]["message"] == "upstream exploded"
    slow = engine.chat(body("slow please"), now=NOW)
    assert (slow.latency, content(slow)) == (45.0, "Sorry for the wait.")
    poisoned = engine.embeddings({"model": "text-embedding-3-small", "input": "poison"}, now=NOW)
    assert poisoned.status == 500
    assert engine.embeddings({"model": "text-embedding-3-small", "input": "ok"}, now=NOW).ok


def test_support_bot_json_script(engine: LLMEngine) -> None:
    engine.load_script(str(FIXTURES / "support_bot.json"))
    classify = {
        "model": LLAMA_3_8B,
        "messages": [
            {"role": "system", "content": "Classify the ticket as JSON."},
            {"role": "user", "content": "I was charged twice"},
        ],
    }
    assert json.loads(content(engine.chat(classify, now=NOW))) == {
        "category": "billing",
        "priority": "high",
    }
    refund = engine.chat(body("Where is my REFUND?", stream=True), now=NOW)
    assert refund.chunks is not None
    deltas = [c["choices"][0]["delta"].get("content") for c in refund.chunks[1:-1]]
    assert deltas == ["Your refund ", "was issued ", "today."]
    two_turns = {
        "model": LLAMA_3_8B,
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"},
        ],
    }
    assert content(engine.chat(two_turns, now=NOW)).startswith("Is there anything else")
    transcript = engine.transcription({"model": "whisper-1"}, b"RIFF....", now=NOW)
    assert transcript.body == {"text": "Hello, I would like a refund for my last order."}


def test_load_rules_from_data_appends_in_order(engine: LLMEngine) -> None:
    engine.reply(content="python first")
    engine.load_rules([{"content": "script second"}])
    assert content(engine.chat(body(), now=NOW)) == "python first"
    assert len(engine.rules) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- contains: a\n  colour: red\n", "rule 0: unknown keys ['colour']"),
        ("rules: 3\n", "a script is a list of rules"),
        ("version: 2\nrules: []\n", "unknown top-level keys ['version']"),
        ("- just a string\n", "rule 0: a rule must be a mapping"),
        ("- content: a\n  json: {}\n", "rule 0: give content or json, not both"),
        ("- content: [unclosed\n", "while parsing"),
    ],
)
def test_script_errors_name_the_file_and_rule(
    engine: LLMEngine, tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScriptError) as info:
        engine.load_script(path)
    assert str(path) in str(info.value) and message in str(info.value)
    assert engine.rules == []


def test_missing_and_broken_json_files(engine: LLMEngine, tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match="No such file"):
        engine.load_script(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.json"
    broken.write_text("{rules: []}")
    with pytest.raises(ScriptError, match=r"broken\.json"):
        engine.load_script(broken)
