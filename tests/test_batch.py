"""POST /v2/batch: URLs, URL groups and queues in one request; a bad entry fails the whole batch."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from helpers import requests_to
from pytest_httpserver import HTTPServer
from qstash import QStash
from qstash.message import BatchResponse, BatchUrlGroupResponse
from qstash_emulator import Emulator
from qstash_emulator.core.users import User
from qstash_emulator.resources.destinations import Fanout


def post_batch(emu: Emulator, content: bytes) -> httpx.Response:
    return httpx.post(
        f"{emu.url}/v2/batch",
        content=content,
        headers={"Authorization": f"Bearer {emu.token}", "Content-Type": "application/json"},
    )


def test_a_batch_publishes_to_urls_groups_and_queues(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    one, two, three = target("/one"), target("/two"), target("/three")
    client.url_group.upsert_endpoints("team", [{"url": two, "name": "b"}, {"url": three}])
    result = client.message.batch_json(
        [
            {"url": one, "body": {"n": 1}, "headers": {"X-Tag": "first"}},
            {"url_group": "team", "body": {"n": 2}},
            {"queue": "jobs", "url": one, "body": {"n": 3}, "method": "PUT"},
        ]
    )
    emu.settle()

    assert isinstance(result[0], BatchResponse) and not result[0].deduplicated
    group = result[1]
    assert isinstance(group, list)
    assert all(isinstance(g, BatchUrlGroupResponse) for g in group)
    assert [g.url for g in group] == [two, three]
    assert isinstance(result[2], BatchResponse)
    ids = [result[0].message_id, *(g.message_id for g in group), result[2].message_id]
    assert len(set(ids)) == 4

    # Deliveries run concurrently: sort by method to compare.
    reqs = sorted(requests_to(httpserver, "/one"), key=lambda r: r.method)
    assert [(r.method, json.loads(r.get_data())) for r in reqs] == [
        ("POST", {"n": 1}),
        ("PUT", {"n": 3}),
    ]
    assert reqs[0].headers["X-Tag"] == "first"
    assert "X-Tag" not in reqs[1].headers
    assert reqs[0].headers["Content-Type"] == "application/json"
    [to_two] = requests_to(httpserver, "/two")
    assert to_two.headers["Upstash-Topic-Name"] == "team"
    assert json.loads(to_two.get_data()) == {"n": 2}
    assert len(requests_to(httpserver, "/three")) == 1
    queued = client.log.list(filter={"queue": "jobs"}).logs
    assert {log.message_id for log in queued} == {result[2].message_id}
    assert client.queue.get("jobs").parallelism == 1


def test_each_batch_entry_keeps_its_own_options(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/hook")
    client.message.batch(
        [
            {"url": url, "body": "later", "delay": "5s"},
            {"url": url, "body": "now", "content_type": "text/plain"},
        ]
    )
    emu.settle()
    assert [r.get_data(as_text=True) for r in requests_to(httpserver, "/hook")] == ["now"]
    emu.advance("5s")
    reqs = requests_to(httpserver, "/hook")
    assert [r.get_data(as_text=True) for r in reqs] == ["now", "later"]
    assert reqs[0].headers["Content-Type"] == "text/plain"


def test_batch_entries_to_a_queue_keep_their_order(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/hook")
    client.queue.upsert("jobs", paused=True)
    client.message.batch([{"queue": "jobs", "url": url, "body": str(i)} for i in range(4)])
    emu.settle()
    assert client.queue.get("jobs").lag == 4

    client.queue.resume("jobs")
    emu.settle()
    assert [r.get_data(as_text=True) for r in requests_to(httpserver, "/hook")] == [
        "0",
        "1",
        "2",
        "3",
    ]


VALID = {"destination": "http://127.0.0.1:9/ok", "queue": "jobs", "body": "fine"}
MALFORMED: list[tuple[str, Any, str]] = [
    ("not a list", {"destination": "http://127.0.0.1:9/x"}, "array"),
    ("empty", [], "array"),
    ("not an object", [VALID, "http://127.0.0.1:9/x"], "message 1"),
    ("no destination", [VALID, {"body": "x"}], "destination is required"),
    ("bad destination", [VALID, {"destination": "not a url!"}], "neither a URL"),
    ("unknown group", [VALID, {"destination": "no-such-group"}], "no-such-group not found"),
    ("two destinations", [VALID, {"destination": "http://a.test", "url": "http://b.test"}], "one"),
    ("header not a string", [VALID, {"destination": "http://a.test", "headers": {"X": 1}}], "X"),
    (
        "header with a newline",
        [VALID, {"destination": "http://a.test", "headers": {"X": "a\r\nB: c"}}],
        "X",
    ),
    (
        "bad Upstash header",
        [VALID, {"destination": "http://a.test", "headers": {"Upstash-Delay": "soon"}}],
        "Upstash-Delay",
    ),
    ("headers not an object", [VALID, {"destination": "http://a.test", "headers": []}], "headers"),
    ("bad queue name", [VALID, {"destination": "http://a.test", "queue": "a b"}], "queue name"),
    (
        "two queues",
        [
            VALID,
            {
                "destination": "http://a.test",
                "queue": "a",
                "headers": {"Upstash-Queue-Name": "b"},
            },
        ],
        "two queues",
    ),
]


def test_a_json_body_that_is_not_a_string_is_sent_as_its_json_text(
    emu: Emulator, client: QStash
) -> None:
    # @upstash/workflow batches a context.call's object body as it is.
    dest = "http://127.0.0.1:9/json"
    response = post_batch(emu, json.dumps([{"destination": dest, "body": {"a": [1, 2]}}]).encode())
    assert response.status_code == 200, response.text
    [message] = emu.engine.state(emu.user).messages.values()
    assert message.body == b'{"a":[1,2]}'


@pytest.mark.parametrize(("case", "payload", "needle"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_entry_fails_the_whole_batch_and_stores_nothing(
    emu: Emulator, client: QStash, case: str, payload: Any, needle: str
) -> None:
    response = post_batch(emu, json.dumps(payload).encode())

    assert response.status_code == 400, case
    assert needle in response.json()["error"]
    emu.settle()
    assert emu.engine.state(emu.user).messages == {}
    assert emu.engine.delivered == type(emu.engine.delivered)()
    assert client.log.list().logs == []
    assert client.queue.list() == []


def test_a_batch_that_is_not_json_is_rejected(emu: Emulator, client: QStash) -> None:
    response = post_batch(emu, b"[{not json")
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]
    assert client.log.list().logs == []


def test_an_oversized_entry_fails_the_batch_with_413(emu: Emulator, client: QStash) -> None:
    big = "x" * (emu.user.quota.max_message_size + 1)
    payload = [VALID, {"destination": "http://a.test", "body": big}]
    response = post_batch(emu, json.dumps(payload).encode())
    assert response.status_code == 413
    assert response.json()["error"].startswith("message 1:")
    assert client.queue.list() == []


def test_a_registered_resolver_claims_destinations_in_publish_enqueue_and_batch(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/provider")

    def resolve(who: User, destination: str) -> list[Fanout] | None:
        return [Fanout(url, {"api": "test"})] if destination == "api/test" else None

    emu.backend.destinations.resolvers.append(resolve)
    auth = {"Authorization": f"Bearer {emu.token}"}
    published = httpx.post(f"{emu.url}/v2/publish/api/test", content=b"p", headers=auth)
    enqueued = httpx.post(f"{emu.url}/v2/enqueue/jobs/api/test", content=b"e", headers=auth)
    batched = post_batch(emu, json.dumps([{"destination": "api/test", "body": "b"}]).encode())
    emu.settle()

    assert [r.status_code for r in (published, enqueued, batched)] == [200, 200, 200]
    assert set(published.json()) == {"messageId"}
    assert sorted(r.get_data(as_text=True) for r in requests_to(httpserver, "/provider")) == [
        "b",
        "e",
        "p",
    ]
    assert {d.message.api for d in emu.engine.delivered} == {"test"}
    assert client.queue.get("jobs").lag == 0
