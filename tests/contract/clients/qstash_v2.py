"""`qstash` 2.0.5 (the line with `chat`) against a standalone emulator:
`python qstash_v2.py [scenario ...]`."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
from typing import Any

import qstash
from _contract import QSTASH_URL, TOKEN, check, eventually, main, raises, scenario, url, wait_for
from _qstash_fidelity import register as register_fidelity
from _qstash_shared import register
from qstash import AsyncQStash, QStash
from qstash.chat import custom, upstash
from qstash.errors import QStashError

# Any: the scripts read the answers of one destination kind at a time.
client: Any = QStash(TOKEN, base_url=QSTASH_URL, retry=False)
MODEL = "meta-llama/Meta-Llama-3-8B-Instruct"
MISTRAL = "mistralai/Mistral-7B-Instruct-v0.2"
QUESTION = [{"role": "user", "content": "What is the capital of Turkey?"}]


def logs(message_id: str) -> list[str]:
    entries = client.event.list(filter={"message_id": message_id}).events
    return [e.state.value for e in reversed(entries)]


@scenario
def version() -> str:
    check(qstash.__version__ == "2.0.5", "the 2.0.5 client", version=qstash.__version__)
    return qstash.__version__


@scenario
def events_list() -> dict[str, Any]:
    res = client.message.publish_json(url=url("evented"), body={"e": 1})
    wait_for("evented")
    states = eventually(
        lambda: (s := logs(res.message_id)) and "DELIVERED" in s and s, "DELIVERED event"
    )
    check(states[0] == "CREATED", "CREATED first", states=states)
    page = client.event.list(count=1)
    check(len(page.events) == 1 and page.cursor, "count and cursor", cursor=page.cursor)
    event = client.event.list(filter={"message_id": res.message_id}).events[0]
    check(event.url == url("evented"), "event url", url=event.url)
    return {"states": states}


@scenario
def cancel_all() -> int:
    ids = [
        client.message.publish_json(url=url("pending"), body={}, delay="1h").message_id
        for _ in range(2)
    ]
    cancelled = client.message.cancel_all()
    check(cancelled >= 2, "cancel_all counts what it cancelled", cancelled=cancelled)
    for mid in ids:
        check("CANCELED" in logs(mid), "cancelled", states=logs(mid))
    return int(cancelled)


def _check_completion(res: Any) -> str:
    check(res.object == "chat.completion", "a chat completion", object=res.object)
    check(res.model == MODEL, "the model asked for", model=res.model)
    content = res.choices[0].message.content
    check(isinstance(content, str) and content, "an answer", content=content)
    check(res.choices[0].message.role == "assistant", "assistant role")
    check(res.usage.total_tokens == res.usage.prompt_tokens + res.usage.completion_tokens, "usage")
    return str(content)


@scenario
def chat_create() -> str:
    return _check_completion(client.chat.create(model=MODEL, provider=upstash(), messages=QUESTION))


def _consume(stream: Any) -> str:
    """What a 2.0.x app does with a stream: join every chunk's `delta.content` after the
    first (item 12: each one carries it, the last one "" beside the finish reason)."""
    chunks = list(stream)
    check(len(chunks) > 2, "streamed in several chunks", chunks=len(chunks))
    check(all(c.object == "chat.completion.chunk" for c in chunks), "chunk objects")
    check(chunks[0].choices[0].delta.role == "assistant", "the role first")
    last = chunks[-1].choices[0]
    check(last.finish_reason == "stop" and last.delta.content == "", "the last chunk")
    text = "".join(c.choices[0].delta.content for c in chunks[1:])
    check(text, "some text")
    return text


@scenario
def chat_stream() -> str:
    return _consume(
        client.chat.create(model=MODEL, provider=upstash(), messages=QUESTION, stream=True)
    )


@scenario
def chat_prompt_stream() -> str:
    return _consume(
        client.chat.prompt(
            model=MODEL, provider=upstash(), system="Be brief.", user="Hi!", stream=True
        )
    )


@scenario
def chat_prompt() -> str:
    res = client.chat.prompt(
        model=MODEL, provider=upstash(), system="Be brief.", user="What is the capital of Turkey?"
    )
    return _check_completion(res)


@scenario
def chat_token_counts() -> dict[str, int]:
    """Item 13: the hosted models count with their own tokenizers; a 20 MB one-word prompt
    is far past the context window, not a handful of tokens."""
    llama = client.chat.create(model=MODEL, provider=upstash(), messages=QUESTION)
    # Llama 3's template: <|begin_of_text|>, a 4-token header, 7 tokens, <|eot_id|>, 4 more.
    check(llama.usage.prompt_tokens == 17, "Llama 3 prompt tokens", usage=str(llama.usage))
    huge = [{"role": "user", "content": "a" * 20_000_000}]
    for model in (MODEL, MISTRAL):
        refused = raises(
            functools.partial(client.chat.create, model=model, provider=upstash(), messages=huge),
            QStashError,
        )
        check("maximum context length" in str(refused), model, error=str(refused)[:300])
    # (Mistral's exact counts need mistral-common, Python 3.11+: tests/llm checks them.)
    return {"llama": llama.usage.prompt_tokens}


@scenario
def chat_custom_provider() -> str:
    """An OpenAI-compatible provider at the emulator's `/v1/chat/completions`."""
    provider = custom(base_url=QSTASH_URL, token=TOKEN)
    return _check_completion(client.chat.create(model=MODEL, provider=provider, messages=QUESTION))


@scenario
def chat_async() -> str:
    async def run() -> str:
        aclient: Any = AsyncQStash(TOKEN, base_url=QSTASH_URL, retry=False)
        res = await aclient.chat.create(model=MODEL, provider=upstash(), messages=QUESTION)
        parts = []
        stream = await aclient.chat.create(
            model=MODEL, provider=upstash(), messages=QUESTION, stream=True
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
        check("".join(parts), "async stream")
        return _check_completion(res)

    return asyncio.run(run())


@scenario
def llm_publish_upstash() -> dict[str, Any]:
    """publish_json to `api/llm` with a callback: the completion arrives in the callback."""
    res = client.message.publish_json(
        api={"name": "llm", "provider": upstash()},
        body={"model": MODEL, "messages": QUESTION},
        callback=url("llm-cb"),
    )
    [cb] = wait_for("llm-cb")
    body = json.loads(cb["body"])
    check(body.get("status") == 200, "the LLM call succeeded", body=body)
    check(body.get("sourceMessageId") == res.message_id, "callback source")
    completion: dict[str, Any] = json.loads(base64.b64decode(body["body"]))
    check(completion.get("object") == "chat.completion", "a chat completion", c=completion)
    return completion


register(client, logs)
register_fidelity(client, logs)

if __name__ == "__main__":
    main()
