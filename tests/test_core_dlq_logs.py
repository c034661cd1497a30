"""DLQ, logs, messages (get/cancel) through the SDK and the raw API."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from helpers import requests_to, states
from pytest_httpserver import HTTPServer
from qstash import QStash
from qstash.errors import QStashError
from qstash.log import LogState
from qstash_emulator import Emulator


def fail_some(emu: Emulator, client: QStash, url: str, n: int, **kw: object) -> list[str]:
    ids = [
        client.message.publish(url=url, body=f"m{i}", retries=0, **kw).message_id for i in range(n)
    ]  # type: ignore[arg-type]
    emu.settle()
    return ids


def test_dlq_list_get_delete(emu: Emulator, client: QStash, target: Callable[..., str]) -> None:
    ids = fail_some(emu, client, target("/dead", 500), 3)
    listed = client.dlq.list().messages
    assert sorted(m.message_id for m in listed) == sorted(ids)
    one = client.dlq.get(listed[0].dlq_id)
    assert one.response_status == 500 and (one.response_body or "").startswith("answer ")
    assert one.body in {"m0", "m1", "m2"} and one.max_retries == 0
    client.dlq.delete(one.dlq_id)
    with pytest.raises(QStashError, match="404"):
        client.dlq.get(one.dlq_id)
    assert client.dlq.delete_many([m.dlq_id for m in listed]) == 2
    assert client.dlq.list().messages == []


def test_dlq_filters_and_cursor(emu: Emulator, client: QStash, target: Callable[..., str]) -> None:
    a, b = target("/a", 500), target("/b", 404)
    fail_some(emu, client, a, 3, label="alpha")
    fail_some(emu, client, b, 2)
    assert len(client.dlq.list(filter={"url": b}).messages) == 2
    assert len(client.dlq.list(filter={"label": "alpha"}).messages) == 3
    assert len(client.dlq.list(filter={"response_status": 404}).messages) == 2
    first = client.dlq.list(count=2)
    assert len(first.messages) == 2 and first.cursor
    rest = client.dlq.list(count=2, cursor=first.cursor)
    last = client.dlq.list(count=2, cursor=rest.cursor)
    seen = [m.dlq_id for m in first.messages + rest.messages + last.messages]
    assert len(seen) == len(set(seen)) == 5 and last.cursor is None


def test_dlq_retry_one_and_many(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/revive", 500, 500, 200)
    fail_some(emu, client, url, 2)
    first, second = client.dlq.list().messages
    res = httpx.post(
        f"{emu.url}/v2/dlq/retry/{first.dlq_id}",
        headers={"Authorization": f"Bearer {emu.token}", "Upstash-Retries": "2"},
    )
    assert res.status_code == 201
    new_id = res.json()["messageId"]
    assert new_id not in (first.message_id, second.message_id)
    emu.settle()
    [created] = [
        log
        for log in client.log.list(filter={"message_id": new_id}).logs
        if log.state.value == "CREATED"
    ]
    assert created.max_retries == 2  # the override applies
    bulk = httpx.post(
        f"{emu.url}/v2/dlq/retry",
        headers={"Authorization": f"Bearer {emu.token}"},
        params={"dlqIds": second.dlq_id},
    )
    assert bulk.status_code == 201 and len(bulk.json()["responses"]) == 1
    emu.run_until_idle()
    assert client.dlq.list().messages == []
    assert states(client, new_id)[-1] == "DELIVERED"


def test_logs_filters_and_cursor(emu: Emulator, client: QStash, target: Callable[..., str]) -> None:
    ok, bad = target("/fine"), target("/bad", 500)
    good = client.message.publish(url=ok, body="x", label="happy")
    client.message.publish(url=bad, body="x", retries=0)
    emu.settle()
    assert {log.state.value for log in client.log.list(filter={"url": bad}).logs} == {
        "CREATED", "ACTIVE", "ERROR", "FAILED"
    }  # fmt: skip
    delivered = client.log.list(filter={"state": LogState.DELIVERED}).logs
    assert [log.message_id for log in delivered] == [good.message_id]
    assert len(client.log.list(filter={"label": "happy"}).logs) == 3
    page1 = client.log.list(count=3)
    page2 = client.log.list(count=3, cursor=page1.cursor)
    page3 = client.log.list(count=3, cursor=page2.cursor)
    assert [len(p.logs) for p in (page1, page2, page3)] == [3, 3, 1] and page3.cursor is None
    times = [log.time for p in (page1, page2, page3) for log in p.logs]
    assert times == sorted(times, reverse=True)


def test_events_endpoint_of_the_older_sdks(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    client.message.publish(url=target("/ev"), body="x")
    emu.settle()
    res = httpx.get(f"{emu.url}/v2/events", headers={"Authorization": f"Bearer {emu.token}"})
    assert [e["state"] for e in res.json()["events"]] == ["DELIVERED", "ACTIVE", "CREATED"]


def test_get_and_cancel_a_pending_message(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/never")
    res = client.message.publish(url=url, body="x", delay="1h", label="l1")
    got = client.message.get(res.message_id)
    assert got.url == url and got.body == "x" and got.label == "l1"
    client.message.cancel(res.message_id)
    emu.advance("2h")
    assert requests_to(httpserver, "/never") == []
    assert states(client, res.message_id) == ["CREATED", "CANCEL_REQUESTED", "CANCELED"]
    with pytest.raises(QStashError, match="404"):
        client.message.get(res.message_id)
    with pytest.raises(QStashError, match="404"):
        client.message.cancel(res.message_id)


def test_bulk_cancel(emu: Emulator, client: QStash, target: Callable[..., str]) -> None:
    url = target("/bulk")
    ids = [client.message.publish(url=url, body=str(i), delay="1h").message_id for i in range(4)]
    assert client.message.cancel_many(ids[:2]) == 2
    assert client.message.cancel_all() == 2
    emu.advance("2h")
    assert [d for d in emu.engine.delivered if d.url == url] == []


def test_finished_messages_stay_readable_for_the_retention_window(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    delivered = client.message.publish(url=target("/gone"), body="x", label="kept")
    failed = client.message.publish(url=target("/dead", 500), body="y", retries=0)
    emu.settle()
    assert states(client, delivered.message_id)[-1] == "DELIVERED"
    got = client.message.get(delivered.message_id)  # as it was when it finished
    assert got.message_id == delivered.message_id and got.body == "x" and got.label == "kept"
    assert client.message.get(failed.message_id).body == "y"
    # Finished: past cancelling, as before (no cancel logged).
    with pytest.raises(QStashError, match="404"):
        client.message.cancel(delivered.message_id)
    assert "CANCEL_REQUESTED" not in states(client, delivered.message_id)
    assert client.message.cancel_all() == 0
    emu.advance(59)
    assert client.message.get(delivered.message_id).message_id == delivered.message_id
    emu.advance(1)  # the default window is 60 s on the emulator's clock
    for gone in (delivered, failed):
        with pytest.raises(QStashError, match="404"):
            client.message.get(gone.message_id)


def test_cancelled_messages_are_not_kept_and_the_window_is_configurable(
    target: Callable[..., str],
) -> None:
    with Emulator(finished_retention="10m") as emu:
        client = QStash(emu.token, base_url=emu.url, retry=False)
        cancelled = client.message.publish(url=target("/c"), body="x", delay="1h")
        client.message.cancel(cancelled.message_id)
        with pytest.raises(QStashError, match="404"):
            client.message.get(cancelled.message_id)  # cancelling removes a message at once
        done = client.message.publish(url=target("/d"), body="x")
        emu.settle()
        emu.advance("9m")
        assert client.message.get(done.message_id).body == "x"
        emu.advance("1m")
        with pytest.raises(QStashError, match="404"):
            client.message.get(done.message_id)
    with Emulator(finished_retention=0) as emu:
        client = QStash(emu.token, base_url=emu.url, retry=False)
        done = client.message.publish(url=target("/e"), body="x")
        emu.settle()
        with pytest.raises(QStashError, match="404"):
            client.message.get(done.message_id)
