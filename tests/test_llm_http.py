"""The chat API and the OpenAI-compatible endpoints over HTTP: /llm/v1, /v1, /v2.

Raw HTTP here (shapes, headers, SSE bytes, error bodies, limits, latency on the clock); the
official clients are in test_openai_client.py, and the 2.0.x SDK at the end of this file.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
from qstash_emulator import Emulator
from qstash_emulator.llm import LLAMA_3_8B, MISTRAL_7B, LLMErrorSpec, make_png, png_size

QUESTION = [{"role": "user", "content": "What is the capital of Turkey?"}]


def chat_body(**extra: Any) -> dict[str, Any]:
    return {"model": LLAMA_3_8B, "messages": QUESTION, **extra}


def post(emu: Emulator, path: str, body: Any = None, token: str | None = "", **kw: Any) -> Any:
    headers = dict(kw.pop("headers", {}))
    if token is not None:
        headers["Authorization"] = f"Bearer {token or emu.token}"
    if body is not None:
        kw["json"] = body
    return httpx.post(emu.url + path, headers=headers, timeout=10, **kw)


def get(emu: Emulator, path: str, token: str | None = "") -> Any:
    headers = {"Authorization": f"Bearer {token or emu.token}"} if token is not None else {}
    return httpx.get(emu.url + path, headers=headers, timeout=10)


def sse_data(text: str) -> list[str]:
    events = [e for e in text.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events), events
    return [e[len("data: ") :] for e in events]


# -- the chat API --------------------------------------------------------------------------------


def test_chat_answers_in_openai_shape_with_the_qstash_token(emu: Emulator) -> None:
    emu.llm.reply(contains="Turkey", content="The capital of Turkey is Ankara.")
    response = post(emu, "/llm/v1/chat/completions", chat_body())
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert list(body) == [
        "id",
        "object",
        "created",
        "model",
        "system_fingerprint",
        "choices",
        "usage",
    ]
    assert body["id"].startswith("chatcmpl-") and body["object"] == "chat.completion"
    assert body["created"] == int(emu.now) and body["model"] == LLAMA_3_8B
    [choice] = body["choices"]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert choice["message"] == {"role": "assistant", "content": "The capital of Turkey is Ankara."}
    assert choice["logprobs"] is None and choice["stop_reason"] is None
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    [call] = emu.llm.calls
    assert call.body == chat_body() and call.provider == "upstash" and call.outcome.status == 200


def test_stream_is_server_sent_events_with_role_first_and_done_last(emu: Emulator) -> None:
    emu.llm.reply(content="Ankara is the capital.", chunks=2)
    response = post(emu, "/llm/v1/chat/completions", chat_body(stream=True))
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    data = sse_data(response.text)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == "Ankara is the capital."
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    # Two tokens per delta: "Ankara is", " the capital", "." plus the role and final chunks.
    assert len(chunks) == 5


def test_stream_include_usage_ends_with_a_usage_chunk(emu: Emulator) -> None:
    body = chat_body(stream=True, stream_options={"include_usage": True})
    data = sse_data(post(emu, "/v1/chat/completions", body).text)
    last = json.loads(data[-2])
    assert last["choices"] == [] and last["usage"]["total_tokens"] > 0


def test_parameters_have_their_effect(emu: Emulator) -> None:
    emu.llm.reply(content="one two three four five. six")
    n = post(emu, "/llm/v1/chat/completions", chat_body(n=3)).json()
    assert [c["index"] for c in n["choices"]] == [0, 1, 2]
    short = post(emu, "/llm/v1/chat/completions", chat_body(max_tokens=2)).json()
    assert short["choices"][0]["message"]["content"] == "one two"
    assert short["choices"][0]["finish_reason"] == "length"
    assert short["usage"]["completion_tokens"] == 2
    stopped = post(emu, "/llm/v1/chat/completions", chat_body(stop=["."])).json()
    assert stopped["choices"][0]["message"]["content"] == "one two three four five"
    assert stopped["choices"][0]["finish_reason"] == "stop"
    probs = post(emu, "/llm/v1/chat/completions", chat_body(logprobs=True, top_logprobs=2))
    content = probs.json()["choices"][0]["logprobs"]["content"]
    assert content[0]["token"] == "one" and len(content[0]["top_logprobs"]) == 2


def test_json_mode_and_seed(emu: Emulator) -> None:
    fmt = {"type": "json_object"}
    first = post(emu, "/v1/chat/completions", chat_body(response_format=fmt, seed=7)).json()
    again = post(emu, "/v1/chat/completions", chat_body(response_format=fmt, seed=7)).json()
    other = post(emu, "/v1/chat/completions", chat_body(response_format=fmt, seed=8)).json()
    parsed = json.loads(first["choices"][0]["message"]["content"])
    assert isinstance(parsed, dict)
    assert first["choices"] == again["choices"]
    assert first["system_fingerprint"] == again["system_fingerprint"]
    assert other["choices"] != first["choices"]


@pytest.mark.parametrize(
    ("body", "status", "param", "code"),
    [
        (chat_body(messages=[]), 400, "messages", "empty_array"),
        (chat_body(temperature=3), 400, "temperature", None),
        (chat_body(top_logprobs=2), 400, "top_logprobs", "invalid_value"),
        (chat_body(n=0), 400, "n", None),
        (chat_body(model="gpt-4o"), 404, None, "model_not_found"),
        ({"messages": QUESTION}, 400, "model", None),
    ],
)
def test_bad_requests_get_openai_errors(
    emu: Emulator, body: dict[str, Any], status: int, param: str | None, code: str | None
) -> None:
    response = post(emu, "/llm/v1/chat/completions", body)
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param and error["type"] == "invalid_request_error"
    if code is not None:
        assert error["code"] == code


def test_malformed_json_and_unknown_paths_get_openai_errors(emu: Emulator) -> None:
    bad = post(emu, "/llm/v1/chat/completions", content=b"{not json")
    assert bad.status_code == 400
    assert "could not parse the JSON body" in bad.json()["error"]["message"]
    missing = post(emu, "/llm/v1/nothing/here", {})
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "Invalid URL (POST /llm/v1/nothing/here)"


def test_tokens_are_checked_with_openai_shaped_401s(emu: Emulator) -> None:
    none = post(emu, "/llm/v1/chat/completions", chat_body(), token=None)
    wrong = post(emu, "/v1/chat/completions", chat_body(), token="not-a-token")
    assert none.status_code == wrong.status_code == 401
    assert none.json()["error"]["code"] is None
    assert "didn't provide an API key" in none.json()["error"]["message"]
    assert wrong.json()["error"]["code"] == "invalid_api_key"
    assert emu.llm.calls == []
    # QStash's own routes keep QStash's error shape.
    assert get(emu, "/v2/messages/x", token="not-a-token").json() == {
        "error": "Unauthorized: invalid token"
    }


def test_models_are_listed_and_retrieved(emu: Emulator) -> None:
    listed = get(emu, "/llm/v1/models").json()
    assert listed["object"] == "list"
    assert [m["id"] for m in listed["data"]][:2] == [LLAMA_3_8B, MISTRAL_7B]
    one = get(emu, f"/llm/v1/models/{MISTRAL_7B}")
    assert one.status_code == 200 and one.json()["id"] == MISTRAL_7B
    unknown = get(emu, "/v2/models/nope")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"


def test_v1_and_v2_serve_any_model_as_a_custom_provider(emu: Emulator) -> None:
    emu.llm.reply(provider="upstash", content="from upstash")
    emu.llm.reply(provider="custom", content="from custom")
    hosted = post(emu, "/llm/v1/chat/completions", chat_body()).json()
    v1 = post(emu, "/v1/chat/completions", chat_body(model="gpt-4o")).json()
    v2 = post(emu, "/v2/chat/completions", chat_body(model="my-model")).json()
    assert hosted["choices"][0]["message"]["content"] == "from upstash"
    assert v1["choices"][0]["message"]["content"] == "from custom" and v1["model"] == "gpt-4o"
    assert v2["choices"][0]["message"]["content"] == "from custom"
    # QStash's /v1 publish still works next to the OpenAI routes.
    published = post(emu, "/v1/publish/http://127.0.0.1:9/x", content=b"hi")
    assert published.status_code == 200 and "messageId" in published.json()


def test_scripted_errors_keep_their_status_and_headers(emu: Emulator) -> None:
    emu.llm.reply(error=LLMErrorSpec(status=503, headers={"Retry-After": "7"}), times=1)
    failed = post(emu, "/llm/v1/chat/completions", chat_body())
    assert failed.status_code == 503 and failed.headers["Retry-After"] == "7"
    assert failed.json()["error"]["type"] == "server_error"
    assert post(emu, "/llm/v1/chat/completions", chat_body()).status_code == 200


def test_legacy_completions_and_embeddings(emu: Emulator) -> None:
    completion = post(emu, "/v1/completions", {"model": LLAMA_3_8B, "prompt": "Once", "n": 2})
    assert completion.json()["object"] == "text_completion"
    assert len(completion.json()["choices"]) == 2
    streamed = sse_data(
        post(emu, "/v2/completions", {"model": "m", "prompt": "x", "stream": True}).text
    )
    assert streamed[-1] == "[DONE]" and json.loads(streamed[0])["object"] == "text_completion"
    body = {"model": "text-embedding-3-small", "input": ["a", "b"], "dimensions": 8}
    embeddings = post(emu, "/v1/embeddings", body).json()
    assert [d["index"] for d in embeddings["data"]] == [0, 1]
    assert len(embeddings["data"][0]["embedding"]) == 8


def wav(seconds: float = 1.0) -> bytes:
    """A silent 8 kHz mono 8-bit WAV of the given length."""
    import struct

    frames = int(8000 * seconds)
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 8000, 1, 8)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + frames)
        + b"WAVEfmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", frames)
        + b"\x80" * frames
    )


def test_audio_transcriptions_and_translations_take_multipart_uploads(emu: Emulator) -> None:
    emu.llm.reply(endpoint="transcription", content="Hello there.")
    files = {"file": ("talk.wav", wav(2.0), "audio/wav")}
    text = post(
        emu,
        "/v1/audio/transcriptions",
        files=files,
        data={"model": "whisper-1", "response_format": "text"},
    )
    assert text.status_code == 200
    assert text.headers["Content-Type"].startswith("text/plain")
    assert text.text == "Hello there.\n"
    verbose = post(
        emu,
        "/v2/audio/translations",
        files=files,
        data={"model": "whisper-1", "response_format": "verbose_json"},
    ).json()
    assert verbose["task"] == "translate" and verbose["duration"] == 2.0
    missing = post(emu, "/v1/audio/transcriptions", data={"model": "whisper-1"})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "file"
    assert emu.llm.calls[0].files["file"] == wav(2.0)


def test_images_as_urls_the_emulator_serves_and_as_base64(emu: Emulator) -> None:
    made = post(emu, "/v1/images/generations", {"prompt": "a cat", "size": "256x256", "n": 2})
    urls = [d["url"] for d in made.json()["data"]]
    assert all(u.startswith(emu.url + "/__llm/images/img-") for u in urls)
    image = httpx.get(urls[0])  # no token: image URLs are fetched as they are
    assert image.status_code == 200 and image.headers["Content-Type"] == "image/png"
    assert png_size(image.content) == (256, 256)
    b64 = post(
        emu, "/v1/images/generations", {"prompt": "a cat", "response_format": "b64_json"}
    ).json()
    assert "b64_json" in b64["data"][0] and "url" not in b64["data"][0]
    assert httpx.get(emu.url + "/__llm/images/img-unknown.png").status_code == 404


def test_image_edits_take_a_png_upload(emu: Emulator) -> None:
    png = make_png(64, 64, "source")
    edited = post(
        emu,
        "/v1/images/edits",
        files={"image": ("in.png", png, "image/png")},
        data={"prompt": "add a hat", "size": "256x256", "response_format": "b64_json"},
    )
    assert edited.status_code == 200 and len(edited.json()["data"]) == 1
    not_png = post(
        emu,
        "/v1/images/edits",
        files={"image": ("in.png", b"nope", "image/png")},
        data={"prompt": "x"},
    )
    assert not_png.status_code == 400 and not_png.json()["error"]["param"] == "image"


# -- chat rate limits ----------------------------------------------------------------------------


def test_chat_request_limit_answers_429_with_ratelimit_headers(emu: Emulator) -> None:
    emu.limits.configure(chat_requests=2)
    answers = [post(emu, "/llm/v1/chat/completions", chat_body()) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    limited = answers[2]
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert limited.headers["x-ratelimit-limit-requests"] == "2"
    assert limited.headers["x-ratelimit-remaining-requests"] == "0"
    assert limited.headers["x-ratelimit-reset-requests"] == "60s"
    assert len(emu.llm.calls) == 2  # a refused request never reaches the model
    emu.advance("60s")
    assert post(emu, "/v1/chat/completions", chat_body()).status_code == 200


def test_chat_token_limit_counts_prompt_and_max_tokens(emu: Emulator) -> None:
    emu.limits.configure(chat_tokens=100)
    assert post(emu, "/llm/v1/chat/completions", chat_body(max_tokens=60)).status_code == 200
    over = post(emu, "/llm/v1/chat/completions", chat_body(max_tokens=60))
    assert over.status_code == 429 and over.headers["x-ratelimit-limit-tokens"] == "100"
    # Other users have their own budget.
    assert (
        post(
            emu, "/llm/v1/chat/completions", chat_body(), token=emu.users["testUser1"].token
        ).status_code
        == 200
    )


def test_llm_routes_are_exempt_from_the_burst_limit(emu: Emulator) -> None:
    emu.limits.configure(burst=1)
    statuses = [post(emu, "/v1/chat/completions", chat_body()).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert get(emu, "/v2/models").status_code == 200
    assert [get(emu, "/v2/queues").status_code for _ in range(2)] == [200, 429]


# -- latency on the emulator's clock -------------------------------------------------------------


async def until(predicate: Any, rounds: int = 100_000) -> None:
    """Yield to the loop until `predicate()` holds (no wall-clock waiting)."""
    for _ in range(rounds):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


async def test_latency_holds_the_answer_until_the_clock_reaches_it() -> None:
    async with Emulator() as emu:
        emu.llm.reply(content="slow", latency=30)
        start = emu.now
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {emu.token}"}) as http:
            request = asyncio.ensure_future(
                http.post(emu.url + "/llm/v1/chat/completions", json=chat_body())
            )
            await until(lambda: len(emu.llm.calls) == 1 and emu.scheduler.next_due() is not None)
            await emu.aadvance(29)
            for _ in range(200):  # give the answer every chance to (wrongly) arrive early
                await asyncio.sleep(0)
            assert not request.done()
            assert emu.scheduler.next_due() == start + 30  # the answer's timer, still pending
            await emu.aadvance(1)
            response = await request
        assert response.json()["choices"][0]["message"]["content"] == "slow"
        assert emu.now == start + 30
        assert emu.llm.calls[0].now == start  # the model was called when the request came in


async def test_latency_zero_answers_at_once_and_auto_advance_skips_latency() -> None:
    async with Emulator(auto_advance=True) as emu:
        start = emu.now
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {emu.token}"}) as http:
            fast = await http.post(emu.url + "/llm/v1/chat/completions", json=chat_body())
            assert fast.status_code == 200 and emu.now == start
            emu.llm.reply(latency=12.5)
            slow = await http.post(emu.url + "/v1/chat/completions", json=chat_body())
        assert slow.status_code == 200 and emu.now == start + 12.5


def test_reset_forgets_rules_and_calls(emu: Emulator) -> None:
    emu.llm.reply(content="scripted")
    post(emu, "/llm/v1/chat/completions", chat_body())
    assert len(emu.llm.calls) == 1
    emu.reset()
    assert emu.llm.calls == [] and emu.llm.rules == []
    answer = post(emu, "/llm/v1/chat/completions", chat_body()).json()
    assert answer["choices"][0]["message"]["content"] != "scripted"


def test_llm_ids_follow_the_emulator_seed() -> None:
    def first_id(emu: Emulator) -> str:
        return str(post(emu, "/llm/v1/chat/completions", chat_body()).json()["id"])

    with Emulator(seed=1) as one, Emulator(seed=1) as same, Emulator(seed=2) as other:
        ids = [first_id(one), first_id(same), first_id(other)]
        one.reset(seed=2)
        reseeded = first_id(one)
    assert ids[0] == ids[1] != ids[2]
    assert reseeded == ids[2]


# -- the 2.0.x SDK (the line with `chat`), in its own virtualenv -------------------------------

SDK2_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from qstash import QStash
    from qstash.chat import custom, upstash
    from qstash.errors import ChatRateLimitExceededError

    url, token, callback = sys.argv[1:4]
    client = QStash(token, base_url=url, retry=False)
    model = "meta-llama/Meta-Llama-3-8B-Instruct"
    question = [{"role": "user", "content": "What is the capital of Turkey?"}]
    out = {}
    res = client.chat.create(model=model, provider=upstash(), messages=question)
    out["create"] = [res.object, res.choices[0].message.content, res.usage.total_tokens]
    res = client.chat.prompt(model=model, user="What is the capital of Turkey?", system="Brief.")
    out["prompt"] = res.choices[0].message.content
    stream = client.chat.create(model=model, messages=question, stream=True)
    chunks = list(stream)
    out["stream"] = [chunks[0].choices[0].delta.role, [c.choices[0].delta.content for c in chunks]]
    stream = client.chat.prompt(model=model, user="Hi", stream=True)
    out["prompt_stream"] = "".join(c.choices[0].delta.content or "" for c in stream)
    res = client.chat.create(model="any-model", provider=custom(url, token), messages=question)
    out["custom"] = [res.model, res.choices[0].message.content]
    published = client.message.publish_json(
        api={"name": "llm", "provider": upstash()},
        body={"model": model, "messages": question},
        callback=callback,
    )
    out["published"] = published.message_id
    try:
        client.chat.create(model=model, messages=question)
    except ChatRateLimitExceededError as exc:
        out["limited"] = [exc.limit_requests, exc.remaining_requests, exc.reset_requests]
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def sdk2_python() -> Path:
    sys.path.insert(0, str(Path(__file__).parent / "contract"))
    from contract_envs import QSTASH_2, RegistryUnreachable, ensure_python

    try:
        return Path(ensure_python(QSTASH_2))
    except RegistryUnreachable as exc:  # pragma: no cover - offline machines
        pytest.skip(f"the 2.0.5 SDK could not be installed: {exc}")


def test_the_2_0_sdk_chats_streams_publishes_and_hits_the_chat_limit(
    emu: Emulator, sdk2_python: Path, tmp_path: Path
) -> None:
    emu.llm.reply(contains="Turkey", content="Ankara.")
    emu.limits.configure(chat_requests=5)
    script = tmp_path / "sdk2.py"
    script.write_text(SDK2_SCRIPT)
    callback = emu.url + "/__capture/llm"
    done = subprocess.run(
        [str(sdk2_python), str(script), emu.url, emu.token, callback],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    assert out["create"][:2] == ["chat.completion", "Ankara."] and out["create"][2] > 0
    assert out["prompt"] == "Ankara."
    role, deltas = out["stream"]
    assert role == "assistant" and deltas[0] == "" and "".join(d or "" for d in deltas) == "Ankara."
    assert out["prompt_stream"]
    assert out["custom"] == ["any-model", "Ankara."]
    # Five chat calls passed the limit (custom() went to /v1); the sixth raised the SDK's error.
    assert out["limited"] == ["5", "0", "60s"]
    assert [c.provider for c in emu.llm.calls][:5] == ["upstash"] * 4 + ["custom"]
    emu.settle()
    published = [d for d in emu.engine.delivered if d.message.id == out["published"]]
    assert published and published[0].message.api == "llm"
