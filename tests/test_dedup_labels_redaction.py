"""Deduplication across publish/enqueue/batch on the virtual clock, labels, and redaction."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable

import httpx
from helpers import requests_to
from pytest_httpserver import HTTPServer
from qstash import QStash
from qstash.message import BatchResponse, EnqueueResponse, PublishResponse
from qstash_emulator import Emulator


def redacted(value: str) -> str:
    return "REDACTED:" + hashlib.sha256(value.encode()).hexdigest()


def auth(emu: Emulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {emu.token}"}


# -- deduplication ----------------------------------------------------------------------------
def test_a_deduplication_id_holds_across_publish_enqueue_and_batch(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/hook")
    first = client.message.publish(url=url, body="a", deduplication_id="order-1")
    assert isinstance(first, PublishResponse) and not first.deduplicated

    again = client.message.enqueue(queue="jobs", url=url, body="b", deduplication_id="order-1")
    [batched] = client.message.batch([{"url": url, "body": "c", "deduplication_id": "order-1"}])
    raw = httpx.post(
        f"{emu.url}/v2/publish/{url}",
        content=b"d",
        headers={**auth(emu), "Upstash-Deduplication-Id": "order-1"},
    )
    emu.settle()

    assert isinstance(again, EnqueueResponse)
    assert (again.message_id, again.deduplicated) == (first.message_id, True)
    assert isinstance(batched, BatchResponse)
    assert (batched.message_id, batched.deduplicated) == (first.message_id, True)
    assert raw.status_code == 202
    assert raw.json() == {"messageId": first.message_id, "deduplicated": True}
    assert [r.get_data(as_text=True) for r in requests_to(httpserver, "/hook")] == ["a"]
    assert client.queue.get("jobs").lag == 0


def test_deduplication_expires_after_ten_minutes_of_virtual_time(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    url = target("/hook")
    first = client.message.publish(url=url, body="a", deduplication_id="once")
    emu.advance("9m59s")
    still = client.message.publish(url=url, body="a", deduplication_id="once")
    emu.advance("1s")
    later = client.message.publish(url=url, body="a", deduplication_id="once")

    assert isinstance(first, PublishResponse)
    assert isinstance(still, PublishResponse) and isinstance(later, PublishResponse)
    assert still.deduplicated and still.message_id == first.message_id
    assert not later.deduplicated and later.message_id != first.message_id


def test_content_based_deduplication_covers_destination_body_and_headers(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url, other = target("/hook"), target("/other")

    def publish(to: str, body: str, **extra: object) -> PublishResponse:
        res = client.message.publish(
            url=to,
            body=body,
            content_based_deduplication=True,
            **extra,  # type: ignore[arg-type]
        )
        assert isinstance(res, PublishResponse)
        return res

    first = publish(url, "same", headers={"X-Id": "1"})
    assert publish(url, "same", headers={"X-Id": "1"}).message_id == first.message_id
    assert not publish(url, "different", headers={"X-Id": "1"}).deduplicated
    assert not publish(url, "same", headers={"X-Id": "2"}).deduplicated
    assert not publish(other, "same", headers={"X-Id": "1"}).deduplicated
    [batched] = client.message.batch(
        [
            {
                "url": url,
                "body": "same",
                "headers": {"X-Id": "1"},
                "content_based_deduplication": True,
            }
        ]
    )
    assert isinstance(batched, BatchResponse) and batched.message_id == first.message_id
    emu.settle()
    assert len(requests_to(httpserver, "/hook")) == 3
    assert len(requests_to(httpserver, "/other")) == 1


def test_deduplication_of_a_group_publish_is_per_endpoint(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    a, b, c = target("/a"), target("/b"), target("/c")
    client.url_group.upsert_endpoints("team", [{"url": a}, {"url": b}])
    first = client.message.publish(url_group="team", body="x", deduplication_id="d1")
    client.url_group.upsert_endpoints("team", [{"url": c}])
    again = client.message.publish(url_group="team", body="x", deduplication_id="d1")

    assert isinstance(first, list) and isinstance(again, list)
    assert [(r.url, r.deduplicated) for r in again] == [(a, True), (b, True), (c, False)]
    assert [r.message_id for r in again[:2]] == [r.message_id for r in first]
    raw = httpx.post(
        f"{emu.url}/v2/publish/team",
        content=b"x",
        headers={**auth(emu), "Upstash-Deduplication-Id": "d1"},
    )
    assert raw.status_code == 202
    assert all(item["deduplicated"] for item in raw.json())


# -- labels -----------------------------------------------------------------------------------
def test_labels_filter_logs_and_the_dlq(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    broken = target("/broken", 500)
    billing = client.message.publish(url=broken, body="b", label="billing", retries=0)
    client.message.publish(url=broken, body="o", label="other", retries=0)
    [batched] = client.message.batch(
        [{"url": broken, "body": "c", "label": "billing", "retries": 0}]
    )
    emu.settle()

    assert isinstance(billing, PublishResponse) and isinstance(batched, BatchResponse)
    wanted = {billing.message_id, batched.message_id}
    logs = client.log.list(filter={"label": "billing"}).logs
    assert {log.message_id for log in logs} == wanted
    assert {log.label for log in logs} == {"billing"}
    dead = client.dlq.list(filter={"label": "billing"}).messages
    assert {m.message_id for m in dead} == wanted
    assert len(client.dlq.list().messages) == 3


# -- redaction --------------------------------------------------------------------------------
def test_redacted_fields_are_hidden_in_the_api_but_delivered_intact(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/hook")
    res = client.message.publish(
        url=url,
        body="card=4242",
        headers={"Authorization": "Bearer secret", "X-Visible": "yes"},
        redact={"body": True, "header": ["Authorization"]},
        delay="1m",
    )
    assert isinstance(res, PublishResponse)

    pending = client.message.get(res.message_id)
    assert pending.body == redacted("card=4242")
    assert pending.headers is not None
    assert pending.headers["Authorization"] == [redacted("Bearer secret")]
    assert pending.headers["X-Visible"] == ["yes"]

    emu.advance("1m")
    [req] = requests_to(httpserver, "/hook")
    assert req.get_data(as_text=True) == "card=4242"
    assert req.headers["Authorization"] == "Bearer secret"

    logs = client.log.list(filter={"message_id": res.message_id}).logs
    assert logs and all(
        base64.b64decode(log.body_base64 or "").decode() == redacted("card=4242") for log in logs
    )
    assert all(
        log.headers is not None and log.headers["Authorization"] == [redacted("Bearer secret")]
        for log in logs
    )


def test_the_dlq_keeps_redaction_and_a_dlq_retry_delivers_the_originals(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    broken = target("/hook", 500, 200)
    client.message.enqueue(
        queue="jobs",
        url=broken,
        body=json.dumps({"ssn": "123"}),
        headers={"X-Token": "t0k3n"},
        redact={"header": True},
        retries=0,
    )
    emu.settle()

    [entry] = client.dlq.list().messages
    assert entry.headers is not None and entry.headers["X-Token"] == [redacted("t0k3n")]
    assert entry.body == json.dumps({"ssn": "123"})  # only the headers were redacted
    assert entry.queue == "jobs"

    retried = httpx.post(f"{emu.url}/v2/dlq/retry/{entry.dlq_id}", headers=auth(emu))
    assert retried.status_code == 201
    emu.settle()
    first, second = requests_to(httpserver, "/hook")
    assert first.headers["X-Token"] == second.headers["X-Token"] == "t0k3n"
    assert client.dlq.list().messages == []
