"""Publish through the official SDK; the delivery is a real, signed HTTP request."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import jwt
import pytest
from helpers import requests_to, states
from pytest_httpserver import HTTPServer
from qstash import QStash, Receiver
from qstash.errors import SignatureError
from qstash_emulator import Emulator


def test_publish_delivers_body_headers_and_a_verifiable_signature(
    emu: Emulator,
    client: QStash,
    receiver: Receiver,
    httpserver: HTTPServer,
    target: Callable[..., str],
) -> None:
    url = target("/hook")
    res = client.message.publish_json(
        url=url, body={"hello": "world"}, headers={"X-Custom": "yes", "Authorization": "Bearer app"}
    )
    emu.settle()

    [req] = requests_to(httpserver, "/hook")
    assert req.method == "POST"
    assert json.loads(req.get_data()) == {"hello": "world"}
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["X-Custom"] == "yes"
    assert req.headers["Authorization"] == "Bearer app"
    assert req.headers["Upstash-Message-Id"] == res.message_id
    assert req.headers["Upstash-Retried"] == "0"
    assert req.headers["Upstash-Caller-Ip"] == "127.0.0.1"
    assert req.headers["User-Agent"] == "Upstash-QStash"
    signature = req.headers["Upstash-Signature"]
    receiver.verify(signature=signature, body=req.get_data(as_text=True), url=url)
    claims = jwt.decode(signature, options={"verify_signature": False})
    assert claims["iss"] == "Upstash" and claims["sub"] == url
    assert claims["exp"] - claims["nbf"] == 300 and claims["iat"] == claims["nbf"]
    assert claims["jti"]


def test_signature_fails_for_a_tampered_body(
    emu: Emulator,
    client: QStash,
    receiver: Receiver,
    httpserver: HTTPServer,
    target: Callable[..., str],
) -> None:
    url = target("/hook")
    client.message.publish(url=url, body="original")
    emu.settle()
    [req] = requests_to(httpserver, "/hook")
    with pytest.raises(SignatureError):
        receiver.verify(signature=req.headers["Upstash-Signature"], body="tampered", url=url)


def test_method_plain_text_and_binary_bodies(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/put")
    client.message.publish(url=url, body="plain text", method="PUT", content_type="text/plain")
    blob = bytes(range(256))
    httpx.post(
        f"{emu.url}/v2/publish/{url}",
        headers={
            "Authorization": f"Bearer {emu.token}",
            "Content-Type": "application/octet-stream",
        },
        content=blob,
    ).raise_for_status()
    emu.settle()
    first, second = requests_to(httpserver, "/put")
    assert first.method == "PUT" and first.get_data() == b"plain text"
    assert first.headers["Content-Type"] == "text/plain"
    assert second.get_data() == blob


def test_header_forward_sends_plain_headers_too(
    emu: Emulator, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/webhook")
    httpx.post(
        f"{emu.url}/v2/publish/{url}",
        headers={
            "Authorization": f"Bearer {emu.token}",
            "Upstash-Header-Forward": "true",
            "X-Github-Event": "push",
        },
        content=b"{}",
    ).raise_for_status()
    emu.settle()
    [req] = requests_to(httpserver, "/webhook")
    assert req.headers["X-Github-Event"] == "push"
    assert "Upstash-Header-Forward" not in req.headers
    assert "Authorization" not in req.headers  # the QStash token stays home


def test_destination_query_string_is_kept_and_token_param_authenticates(
    emu: Emulator, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/q")
    res = httpx.post(f"{emu.url}/v2/publish/{url}?page=2&qstashToken={emu.token}", content=b"x")
    assert res.status_code == 200, res.text
    emu.settle()
    [req] = requests_to(httpserver, "/q")
    assert dict(req.args) == {"page": "2"}


def test_delay_holds_the_message_until_the_clock_passes_it(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/later")
    res = client.message.publish(url=url, body="x", delay="1h")
    emu.settle()
    assert requests_to(httpserver, "/later") == []
    assert client.message.get(res.message_id).not_before == int((emu.now + 3600) * 1000)
    emu.advance(3599)
    assert requests_to(httpserver, "/later") == []
    emu.advance(1)
    assert len(requests_to(httpserver, "/later")) == 1
    assert states(client, res.message_id) == ["CREATED", "ACTIVE", "DELIVERED"]


def test_not_before_takes_precedence_over_delay(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/nb")
    start = emu.now
    client.message.publish(url=url, body="x", delay="1d", not_before=int(start) + 120)
    emu.advance(119)
    assert requests_to(httpserver, "/nb") == []
    emu.advance(1)
    [delivery] = [d for d in emu.engine.delivered if d.url == url]
    assert delivery.time == start + 120


def test_a_not_before_in_the_past_is_delivered_at_once(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/past")
    client.message.publish(url=url, body="x", not_before=int(emu.now) - 100)
    emu.settle()
    assert len(requests_to(httpserver, "/past")) == 1


def test_deduplication_id_answers_202_with_the_first_message_id(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/dedup")
    first = client.message.publish(url=url, body="a", deduplication_id="order-1")
    raw = httpx.post(
        f"{emu.url}/v2/publish/{url}",
        headers={"Authorization": f"Bearer {emu.token}", "Upstash-Deduplication-Id": "order-1"},
        content=b"b",
    )
    assert raw.status_code == 202
    assert raw.json() == {"messageId": first.message_id, "deduplicated": True}
    content_a = client.message.publish(url=url, body="same", content_based_deduplication=True)
    content_b = client.message.publish(url=url, body="same", content_based_deduplication=True)
    assert content_b.deduplicated and content_b.message_id == content_a.message_id
    emu.settle()
    assert len(requests_to(httpserver, "/dedup")) == 2
    emu.advance("10m")
    again = client.message.publish(url=url, body="a", deduplication_id="order-1")
    assert not again.deduplicated and again.message_id != first.message_id


def test_same_scenario_gives_same_ids_and_logs(
    httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    def run(path: str) -> list[dict[str, object]]:
        httpserver.clear_all_handlers()
        url = target(path, 500, 200)  # a fresh endpoint per run: the same answers each time
        with Emulator(seed=7) as emu:
            client = QStash(emu.token, base_url=emu.url, retry=False)
            client.message.publish(url=url, body="x", label="a")
            client.message.publish(url=url, body="y", delay="5m")
            emu.run_until_idle()
            logs = httpx.get(
                f"{emu.url}/v2/logs", headers={"Authorization": f"Bearer {emu.token}"}
            ).json()["logs"]
            for log in logs:  # the destination's own Date header is not the emulator's to fix
                log.pop("responseHeaders", None)
                log.pop("responseHeader", None)  # the same, as qstash 3.x spells it
            return list(logs)

    first, second = run("/det"), run("/det")
    assert first == second
    assert len(first) >= 8


def test_async_mode_inside_a_running_loop(
    httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    import asyncio

    from qstash import AsyncQStash

    url = target("/async")

    async def main() -> None:
        async with Emulator() as emu:
            client = AsyncQStash(emu.token, base_url=emu.url, retry=False)
            await client.message.publish(url=url, body="async", delay="10s")
            await emu.asettle()
            assert requests_to(httpserver, "/async") == []
            await emu.aadvance("10s")
            assert [r.get_data() for r in requests_to(httpserver, "/async")] == [b"async"]

    asyncio.run(main())


def test_reset_returns_to_the_configured_start_time(target: Callable[..., str]) -> None:
    start = 1_800_000_000.0
    with Emulator(start_time=start) as emu:
        emu.advance("1d")
        emu.reset()
        assert emu.now == start
