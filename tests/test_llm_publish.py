"""LLM publishing through QStash: `api/llm` and provider destinations, answered by the script and
delivered to the callback like any delivery (signed, retried, logged), never to the network."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from helpers import requests_to, times
from pytest_httpserver import HTTPServer
from qstash import QStash, Receiver
from qstash.chat import custom, openai
from qstash_emulator import Emulator
from qstash_emulator.llm import LLAMA_3_8B, LLMErrorSpec
from qstash_emulator.llm.publishing import UPSTASH_LLM_URL

OPENAI_CHAT = "https://api.openai.com/v1/chat/completions"
QUESTION = [{"role": "user", "content": "What is the capital of Turkey?"}]
REQUEST = {"model": LLAMA_3_8B, "messages": QUESTION}


def publish(emu: Emulator, destination: str, body: Any = REQUEST, **headers: str) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"Authorization": f"Bearer {emu.token}", "Content-Type": "application/json"}
    sent.update({k.replace("_", "-"): v for k, v in headers.items()})
    return httpx.post(f"{emu.url}/v2/publish/{destination}", content=data, headers=sent)


def callbacks(httpserver: HTTPServer, path: str = "/cb") -> list[dict[str, Any]]:
    return [json.loads(req.get_data()) for req in requests_to(httpserver, path)]


def completion(callback: dict[str, Any]) -> Any:
    return json.loads(base64.b64decode(callback["body"]))


def test_api_llm_delivers_the_completion_to_the_callback(
    emu: Emulator, httpserver: HTTPServer, target: Callable[..., str], receiver: Receiver
) -> None:
    emu.llm.reply(contains="Turkey", content="Ankara.")
    cb = target("/cb")
    published = publish(emu, "api/llm", Upstash_Callback=cb)
    assert published.status_code == 200
    message_id = published.json()["messageId"]
    emu.settle()
    [req] = requests_to(httpserver, "/cb")
    receiver.verify(signature=req.headers["Upstash-Signature"], body=req.get_data(as_text=True))
    [body] = callbacks(httpserver)
    assert body["status"] == 200 and body["sourceMessageId"] == message_id
    assert body["url"] == UPSTASH_LLM_URL
    assert json.loads(base64.b64decode(body["sourceBody"])) == REQUEST
    answer = completion(body)
    assert answer["object"] == "chat.completion" and answer["model"] == LLAMA_3_8B
    assert answer["choices"][0]["message"]["content"] == "Ankara."
    [call] = emu.llm.calls
    assert call.provider == "upstash" and call.body == REQUEST
    [delivered] = [d for d in emu.engine.delivered if d.message.id == message_id]
    assert delivered.url == UPSTASH_LLM_URL and delivered.message.api == "llm"
    logs = httpx.get(
        f"{emu.url}/v2/logs?messageId={message_id}",
        headers={"Authorization": f"Bearer {emu.token}"},
    ).json()["logs"]
    assert [e["state"] for e in reversed(logs)] == ["CREATED", "ACTIVE", "DELIVERED"]
    assert {e["api"] for e in logs} == {"llm"}


def test_3x_sdk_publish_enqueue_and_batch_with_the_openai_provider(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    emu.llm.reply(provider="openai", content="From the script, not OpenAI.")
    cb = target("/cb")
    api: Any = {"name": "llm", "provider": openai("sk-test")}
    body = {"model": "gpt-4o", "messages": QUESTION}
    client.message.publish_json(api=api, body=body, callback=cb)
    client.message.enqueue_json(queue="llm-jobs", api=api, body=body, callback=cb)
    client.message.batch_json([{"api": api, "body": body, "callback": cb}])
    emu.settle()
    answers = [completion(c) for c in callbacks(httpserver)]
    assert len(answers) == 3
    assert {a["choices"][0]["message"]["content"] for a in answers} == {
        "From the script, not OpenAI."
    }
    sent = [d for d in emu.engine.delivered if d.url == OPENAI_CHAT]
    assert len(sent) == 3
    assert all(("Authorization", "Bearer sk-test") in d.headers for d in sent)
    assert [c.provider for c in emu.llm.calls] == ["openai"] * 3
    assert {d.message.queue_name for d in sent} == {None, "llm-jobs"}


def test_api_llm_in_raw_enqueue_and_batch(
    emu: Emulator, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    cb = target("/cb")
    auth = {"Authorization": f"Bearer {emu.token}"}
    enqueued = httpx.post(
        f"{emu.url}/v2/enqueue/llm-queue/api/llm",
        content=json.dumps(REQUEST).encode(),
        headers={**auth, "Upstash-Callback": cb},
    )
    entries = [
        {"destination": "api/llm", "headers": {"Upstash-Callback": cb}, "body": json.dumps(REQUEST)}
    ] * 2
    batched = httpx.post(f"{emu.url}/v2/batch", json=entries, headers=auth)
    assert enqueued.status_code == 200 and batched.status_code == 200
    assert len(batched.json()) == 2
    emu.settle()
    assert [c["status"] for c in callbacks(httpserver)] == [200, 200, 200]
    assert len(emu.llm.calls) == 3


@pytest.mark.parametrize("destination", ["api/llm", OPENAI_CHAT])
@pytest.mark.parametrize(
    ("body", "headers", "needle"),
    [
        (REQUEST, {}, "requires an Upstash-Callback header"),
        ({**REQUEST, "stream": True}, {"Upstash-Callback": "http://127.0.0.1:9/cb"}, "streaming"),
        (b"not json", {"Upstash-Callback": "http://127.0.0.1:9/cb"}, "chat completion request"),
        (
            {**REQUEST, "messages": []},
            {"Upstash-Callback": "http://127.0.0.1:9/cb"},
            "invalid chat completion request: Invalid 'messages'",
        ),
    ],
)
def test_llm_publishes_need_a_callback_and_a_non_streaming_chat_request(
    emu: Emulator, destination: str, body: Any, headers: dict[str, str], needle: str
) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    auth = {"Authorization": f"Bearer {emu.token}", "Upstash-Forward-Authorization": "Bearer k"}
    answers = [
        httpx.post(
            f"{emu.url}/v2/publish/{destination}", content=data, headers={**auth, **headers}
        ),
        httpx.post(
            f"{emu.url}/v2/enqueue/q/{destination}", content=data, headers={**auth, **headers}
        ),
        httpx.post(
            f"{emu.url}/v2/batch",
            json=[
                {"destination": "http://127.0.0.1:9/ok", "body": "fine"},
                {"destination": destination, "headers": headers, "body": data.decode()},
            ],
            headers=auth,
        ),
    ]
    for answer in answers:
        assert answer.status_code == 400, answer.text
        assert needle in answer.json()["error"]
    assert answers[2].json()["error"].startswith("message 1:")
    emu.settle()
    assert emu.engine.delivered == type(emu.engine.delivered)()  # nothing was created
    assert emu.engine.state(emu.user).messages == {}


def test_an_unknown_hosted_model_is_refused_at_publish(emu: Emulator) -> None:
    answer = publish(emu, "api/llm", {**REQUEST, "model": "gpt-4o"}, Upstash_Callback="http://x.y/")
    assert answer.status_code == 400
    assert "does not exist" in answer.json()["error"]


def test_a_configured_custom_provider_is_answered_by_the_script(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    emu.llm_providers.add("https://api.together.xyz/v1/chat/completions", name="together")
    emu.llm.reply(provider="together", content="Together, scripted.")
    cb = target("/cb")
    api: Any = {"name": "llm", "provider": custom("https://api.together.xyz", "tok")}
    client.message.publish_json(
        api=api, body={"model": "meta-llama/Llama-3-8b-chat-hf", "messages": QUESTION}, callback=cb
    )
    emu.settle()
    [body] = callbacks(httpserver)
    assert body["url"] == "https://api.together.xyz/v1/chat/completions"
    assert completion(body)["choices"][0]["message"]["content"] == "Together, scripted."
    # An unconfigured host is an ordinary URL: no LLM checks (and a real delivery).
    plain = publish(emu, "http://127.0.0.1:9/v1/chat/completions", b"anything")
    assert plain.status_code == 200


def test_a_provider_without_its_api_key_answers_401(
    emu: Emulator, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    cb = target("/cb")
    publish(
        emu, OPENAI_CHAT, {**REQUEST, "model": "gpt-4o"}, Upstash_Callback=cb, Upstash_Retries="0"
    )
    emu.settle()
    [body] = callbacks(httpserver)
    assert body["status"] == 401
    assert "didn't provide an API key" in completion(body)["error"]["message"]
    assert emu.llm.calls == []


def test_a_rate_limited_provider_is_retried_when_its_limit_resets(
    emu: Emulator, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    limited = LLMErrorSpec.rate_limited(reset_requests="6m5s", reset_tokens="6m5s")
    emu.llm.reply(error=limited, times=1)
    cb = target("/cb")
    start = emu.now
    publish(emu, "api/llm", Upstash_Callback=cb)
    emu.run_until_idle()
    # The reset (365 s), not the backoff ladder (e^2.5 ≈ 12 s), sets the second attempt.
    assert times(emu, UPSTASH_LLM_URL) == [0, 365]
    first, second = callbacks(httpserver)
    assert first["status"] == 429
    assert first["header"]["X-Ratelimit-Reset-Requests"] == ["6m5s"]
    assert completion(first)["error"]["code"] == "rate_limit_exceeded"
    assert second["status"] == 200 and second["retried"] == 1
    assert [c.now - start for c in emu.llm.calls] == [0, 365]


def test_the_chat_limits_hold_for_published_requests(
    emu: Emulator, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    emu.limits.configure(chat_requests=1)
    cb = target("/cb")
    first = publish(emu, "api/llm", Upstash_Callback=cb).json()["messageId"]
    second = publish(emu, "api/llm", Upstash_Callback=cb).json()["messageId"]
    emu.run_until_idle()
    attempts = {
        m: [
            d.time - emu.engine.delivered[0].time for d in emu.engine.delivered if d.message.id == m
        ]
        for m in (first, second)
    }
    assert attempts == {first: [0], second: [0, 60]}  # retried when the minute's window resets
    assert [c["status"] for c in callbacks(httpserver)] == [200, 429, 200]


def test_passthrough_sends_provider_requests_to_the_network(
    emu: Emulator, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    httpserver.expect_request("/openai/v1/chat/completions").respond_with_json(
        {"id": "real", "object": "chat.completion"}
    )
    emu.delivery.rewrite("https://api.openai.com", httpserver.url_for("/openai"))
    emu.llm_passthrough = True
    cb = target("/cb")
    publish(
        emu,
        OPENAI_CHAT,
        {**REQUEST, "model": "gpt-4o"},
        Upstash_Callback=cb,
        Upstash_Forward_Authorization="Bearer sk-real",
    )
    emu.settle()
    [sent] = requests_to(httpserver, "/openai/v1/chat/completions")
    assert sent.headers["Authorization"] == "Bearer sk-real"
    assert completion(callbacks(httpserver)[0])["id"] == "real"
    assert emu.llm.calls == []
    emu.reset()  # a reset goes back to answering from the script
    assert emu.llm_passthrough is False


def test_a_latency_beyond_the_timeout_is_a_timed_out_attempt(
    emu: Emulator, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    emu.llm.reply(latency=120)
    cb = target("/cb")
    publish(emu, "api/llm", Upstash_Callback=cb, Upstash_Timeout="30s", Upstash_Retries="0")
    emu.settle()
    [body] = callbacks(httpserver)
    assert body["status"] == 0 and "timed out after 30s" in body["error"]


def test_faults_can_still_be_injected_on_llm_urls(
    emu: Emulator, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    emu.faults.add(UPSTASH_LLM_URL, fail_times=1, status=502)
    cb = target("/cb")
    publish(emu, "api/llm", Upstash_Callback=cb)
    emu.run_until_idle()
    assert [c["status"] for c in callbacks(httpserver)] == [502, 200]
    assert len(emu.llm.calls) == 1


def test_other_openai_endpoints_on_a_provider_host(
    emu: Emulator, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    """The article's example: an image generation published to api.openai.com."""
    cb = target("/cb")
    publish(
        emu,
        "https://api.openai.com/v1/images/generations",
        {"prompt": "some prompt", "size": "256x256"},
        Upstash_Callback=cb,
        Upstash_Forward_Authorization="Bearer sk-x",
    )
    publish(
        emu,
        "https://api.openai.com/v1/nothing",
        {},
        Upstash_Callback=cb,
        Upstash_Forward_Authorization="Bearer sk-x",
        Upstash_Retries="0",
    )
    emu.settle()
    # Two callbacks in flight at once may arrive in either order: tell them by their source.
    by_url = {body["url"]: body for body in callbacks(httpserver)}
    image = by_url["https://api.openai.com/v1/images/generations"]
    missing = by_url["https://api.openai.com/v1/nothing"]
    url = completion(image)["data"][0]["url"]
    assert url.startswith(emu.url + "/__llm/images/")
    assert httpx.get(url).headers["Content-Type"] == "image/png"
    assert missing["status"] == 404
    assert completion(missing)["error"]["message"] == "Invalid URL (POST /v1/nothing)"


def test_the_emulator_as_its_own_custom_provider(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    """3.x's custom(base_url=<emulator>/llm): a real delivery to the emulator's chat API; its
    latency does not stall the virtual clock."""
    emu.llm.reply(content="Self-served.", latency=5)
    cb = target("/cb")
    api: Any = {"name": "llm", "provider": custom(f"{emu.url}/llm", emu.token)}
    client.message.publish_json(api=api, body=REQUEST, callback=cb)
    emu.settle()
    [body] = callbacks(httpserver)
    assert body["status"] == 200 and body["url"] == f"{emu.url}/llm/v1/chat/completions"
    assert completion(body)["choices"][0]["message"]["content"] == "Self-served."


def test_a_failing_llm_call_goes_to_the_dlq_with_its_error(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    emu.llm.reply(error=500)
    cb, failed = target("/cb"), target("/failed")
    publish(
        emu, "api/llm", Upstash_Callback=cb, Upstash_Failure_Callback=failed, Upstash_Retries="1"
    )
    emu.run_until_idle()
    [entry] = client.dlq.list().messages
    assert entry.url == UPSTASH_LLM_URL and entry.response_status == 500
    assert [c["status"] for c in callbacks(httpserver)] == [500, 500]
    [failure] = callbacks(httpserver, "/failed")
    assert completion(failure)["error"]["type"] == "server_error"
