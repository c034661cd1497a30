"""The official `openai` client against the emulator's OpenAI-compatible LLM API (sync, async,
streaming; the `/llm/v1`, `/v1` and `/queue` bases): `python openai_client.py [scenario ...]`."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
from _contract import QSTASH_URL, TOKEN, check, main, scenario
from openai import AsyncOpenAI, OpenAI

MODEL = "meta-llama/Meta-Llama-3-8B-Instruct"
QUESTION: Any = [{"role": "user", "content": "What is the capital of Turkey?"}]
LLM = f"{QSTASH_URL}/llm/v1"


def sync_client(base: str = LLM) -> OpenAI:
    return OpenAI(base_url=base, api_key=TOKEN, max_retries=0)


def async_client(base: str = LLM) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=base, api_key=TOKEN, max_retries=0)


def check_completion(res: Any) -> str:
    check(res.object == "chat.completion", "a chat completion", object=res.object)
    check(res.id and res.created > 0, "id and created", id=res.id)
    check(res.model == MODEL, "the model asked for", model=res.model)
    choice = res.choices[0]
    check(choice.message.role == "assistant", "assistant role")
    check(isinstance(choice.message.content, str) and choice.message.content, "an answer")
    check(choice.finish_reason in ("stop", "length"), "finish reason", r=choice.finish_reason)
    usage = res.usage
    check(usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, "usage adds up")
    return str(choice.message.content)


def check_chunks(chunks: list[Any]) -> str:
    check(len(chunks) > 1, "several chunks", n=len(chunks))
    check(all(c.object == "chat.completion.chunk" for c in chunks), "chunk objects")
    check(len({c.id for c in chunks}) == 1, "one id for the stream")
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    check(text, "streamed text")
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices]
    check(reasons[-1] in ("stop", "length"), "the last choice chunk finishes", reasons=reasons)
    return text


@scenario
def chat_sync() -> str:
    return check_completion(sync_client().chat.completions.create(model=MODEL, messages=QUESTION))


@scenario
def chat_async() -> str:
    async def run() -> Any:
        return await async_client().chat.completions.create(model=MODEL, messages=QUESTION)

    return check_completion(asyncio.run(run()))


@scenario
def chat_stream_sync() -> str:
    stream = sync_client().chat.completions.create(model=MODEL, messages=QUESTION, stream=True)
    return check_chunks(list(stream))


@scenario
def chat_stream_async() -> str:
    async def run() -> list[Any]:
        stream = await async_client().chat.completions.create(
            model=MODEL, messages=QUESTION, stream=True
        )
        return [chunk async for chunk in stream]

    return check_chunks(asyncio.run(run()))


@scenario
def chat_v1_base() -> str:
    client = sync_client(f"{QSTASH_URL}/v1")
    return check_completion(client.chat.completions.create(model=MODEL, messages=QUESTION))


@scenario
def chat_queue_base() -> str:
    client = sync_client(f"{QSTASH_URL}/queue")
    return check_completion(client.chat.completions.create(model=MODEL, messages=QUESTION))


@scenario
def chat_options() -> dict[str, Any]:
    """Usage in the stream, several choices with logprobs, JSON mode and tool calls."""
    client = sync_client()
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=QUESTION, stream=True, stream_options={"include_usage": True}
        )
    )
    usage = chunks[-1].usage
    check(usage and not chunks[-1].choices, "a final usage chunk", last=str(chunks[-1]))
    several = client.chat.completions.create(
        model=MODEL, messages=QUESTION, n=2, logprobs=True, top_logprobs=2
    )
    check([c.index for c in several.choices] == [0, 1], "n choices")
    logprobs = several.choices[0].logprobs
    check(logprobs and logprobs.content and logprobs.content[0].top_logprobs, "logprobs")
    as_json = client.chat.completions.create(
        model=MODEL, messages=QUESTION, response_format={"type": "json_object"}
    )
    json.loads(as_json.choices[0].message.content or "")
    tools: Any = [
        {
            "type": "function",
            "function": {
                "name": "capital_of",
                "parameters": {
                    "type": "object",
                    "properties": {"country": {"type": "string"}},
                    "required": ["country"],
                },
            },
        }
    ]
    called = client.chat.completions.create(
        model=MODEL, messages=QUESTION, tools=tools, tool_choice="required"
    )
    calls: list[Any] = list(called.choices[0].message.tool_calls or [])
    check(called.choices[0].finish_reason == "tool_calls" and calls, "a tool call")
    check("country" in json.loads(calls[0].function.arguments), "arguments fit the schema")
    return {"usage": str(usage), "tool_call": str(calls[0])}


@scenario
def embeddings_and_completions() -> dict[str, Any]:
    client = sync_client(f"{QSTASH_URL}/v1")
    vectors = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    check(len(vectors.data) == 2 and len(vectors.data[0].embedding) > 0, "two vectors")
    text = client.completions.create(model=MODEL, prompt="Say hi", max_tokens=5)
    check(text.object == "text_completion" and text.choices[0].text, "a text completion")
    return {"dim": len(vectors.data[0].embedding), "text": text.choices[0].text}


@scenario
def models_list() -> list[str]:
    ids = [m.id for m in sync_client().models.list()]
    check(MODEL in ids, "the Upstash-hosted model is listed", ids=ids)
    return ids


@scenario
def errors_shape() -> dict[str, Any]:
    try:
        sync_client().chat.completions.create(model=MODEL, messages=[])
    except openai.BadRequestError as exc:
        bad = exc
    else:
        raise AssertionError("empty messages accepted")
    check(bad.status_code == 400, "400 for a bad request", status=bad.status_code)
    check(isinstance(bad.body, dict) and bad.body.get("message"), "OpenAI error body", b=bad.body)
    client = OpenAI(base_url=LLM, api_key="not-a-token", max_retries=0)
    try:
        client.chat.completions.create(model=MODEL, messages=QUESTION)
    except openai.AuthenticationError as exc:
        check(exc.status_code == 401, "401 for a wrong token")
    else:
        raise AssertionError("a wrong token accepted")
    return {"bad_request": bad.body}


if __name__ == "__main__":
    main()
