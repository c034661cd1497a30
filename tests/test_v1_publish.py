"""The older `/v1/publish/<destination URL>` form, as in the seed article's curl example.

No official SDK speaks v1, so these requests are plain HTTP, header for header."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
from helpers import requests_to
from pytest_httpserver import HTTPServer
from qstash import QStash, Receiver
from qstash_emulator import Emulator
from qstash_emulator.core.clock import DEFAULT_EPOCH


def v1(
    emu: Emulator, destination: str, headers: dict[str, str], body: bytes = b""
) -> httpx.Response:
    return httpx.post(
        f"{emu.url}/v1/publish/{destination}",
        headers={"Authorization": f"Bearer {emu.token}", **headers},
        content=body,
    )


def callback_bodies(httpserver: HTTPServer, path: str) -> list[dict[str, Any]]:
    return [json.loads(r.get_data()) for r in requests_to(httpserver, path)]


def test_the_seed_articles_request_forwards_headers_and_calls_back(
    emu: Emulator,
    client: QStash,
    receiver: Receiver,
    httpserver: HTTPServer,
    target: Callable[..., str],
) -> None:
    url = target("/v1/images/generations")
    cb = target("/callback")
    res = v1(
        emu,
        url,
        {
            "Upstash-Forward-My-Custom-Header": "my-value",
            "Upstash-forward-Authorization": "Bearer OPENAI_API_KEY",
            "Content-type": "application/json",
            "Upstash-Callback": cb,
            "Upstash-Retries": "3",
        },
        b'{ "prompt": "some prompt" }',
    )
    assert res.status_code == 200
    message_id = res.json()["messageId"]
    emu.settle()

    [req] = requests_to(httpserver, "/v1/images/generations")
    assert req.get_data() == b'{ "prompt": "some prompt" }'
    assert req.headers["My-Custom-Header"] == "my-value"
    assert req.headers["Authorization"] == "Bearer OPENAI_API_KEY"
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["Upstash-Message-Id"] == message_id
    receiver.verify(
        signature=req.headers["Upstash-Signature"], body=req.get_data(as_text=True), url=url
    )

    [callback] = callback_bodies(httpserver, "/callback")
    assert callback["status"] == 200
    assert base64.b64decode(callback["body"]) == b"answer 1"
    assert callback["sourceMessageId"] == message_id
    assert callback["maxRetries"] == 3 and callback["retried"] == 0
    assert callback["url"] == url

    [log] = [
        lg
        for lg in client.log.list(filter={"message_id": message_id}).logs
        if lg.state.value == "DELIVERED"
    ]
    assert log.url == url


def test_upstash_retries_bounds_the_attempts(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/flaky", 500)
    cb = target("/cb")
    res = v1(emu, url, {"Upstash-Retries": "2", "Upstash-Callback": cb}, b"x")
    message_id = res.json()["messageId"]
    emu.run_until_idle()

    attempts = requests_to(httpserver, "/flaky")
    assert [r.headers["Upstash-Retried"] for r in attempts] == ["0", "1", "2"]
    sent = [d.time - DEFAULT_EPOCH for d in emu.engine.delivered if d.url == url]
    # QStash's default backoff: e^(2.5·n) seconds before retry n.
    assert [round(t, 1) for t in sent] == [0.0, 12.2, 12.2 + 148.4]
    assert [c["retried"] for c in callback_bodies(httpserver, "/cb")] == [0, 1, 2]
    [dead] = client.dlq.list().messages
    assert dead.message_id == message_id and dead.max_retries == 2


def test_query_string_of_the_destination_is_kept(
    emu: Emulator, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/search")
    res = v1(emu, f"{url}?q=cats&page=2", {})
    assert res.status_code == 200
    emu.settle()
    [req] = requests_to(httpserver, "/search")
    assert req.args.to_dict() == {"q": "cats", "page": "2"}


def test_upstash_cron_on_v1_creates_a_schedule(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    url = target("/daily")
    res = v1(emu, url, {"Upstash-Cron": "0 1 * * *", "Upstash-Forward-X-Job": "fetch"}, b"go")
    assert res.status_code == 200
    schedule_id = res.json()["scheduleId"]
    assert list(res.json()) == ["scheduleId"]
    schedule = client.schedule.get(schedule_id)
    assert (schedule.cron, schedule.destination, schedule.body) == ("0 1 * * *", url, "go")
    assert schedule.headers == {"X-Job": ["fetch"]}
    emu.advance("2d")
    sent = [d for d in emu.engine.delivered if d.url == url]
    assert [d.time - DEFAULT_EPOCH for d in sent] == [3600.0, 86400.0 + 3600.0]
    assert all(("Upstash-Schedule-Id", schedule_id) in d.headers for d in sent)


def test_a_callback_without_a_scheme_is_rejected(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    # The seed article writes `Upstash-Callback: myapp.com/callback`; QStash requires a scheme.
    url = target("/never")
    res = v1(emu, url, {"Upstash-Callback": "myapp.com/callback"}, b"x")
    assert res.status_code == 400
    assert "callback" in res.json()["error"]
    emu.advance("1m")
    assert list(emu.engine.delivered) == []
    assert client.log.list().logs == []


def test_retries_over_the_plan_limit_are_rejected(
    emu: Emulator, target: Callable[..., str]
) -> None:
    url = target("/never")
    res = v1(emu, url, {"Upstash-Retries": str(emu.user.quota.max_retries + 1)})
    assert res.status_code == 400
    assert "Upstash-Retries" in res.json()["error"]
    emu.advance("1m")
    assert list(emu.engine.delivered) == []
