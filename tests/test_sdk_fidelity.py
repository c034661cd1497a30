"""In-process checks of what the official SDKs expect (issue 10); the contract scenarios in
tests/contract/ show the same with the clients themselves."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from qstash import QStash
from qstash_emulator import Emulator
from qstash_emulator.parsing.forwarding import drop_reserved, forwardable


def api(emu: Emulator, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {emu.token}", **kwargs.pop("headers", {})}
    return httpx.request(method, emu.url + path, headers=headers, **kwargs)


def fail(emu: Emulator, client: QStash, url: str, n: int, label: str) -> None:
    for i in range(n):
        client.message.publish(url=url, body=f"m{i}", retries=0, label=label)
    emu.settle()


def dlq_size(client: QStash) -> int:
    return len(client.dlq.list().messages)


# -- item 3: bulk endpoints ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/v2/dlq?labeel=x"),
        ("DELETE", "/v2/dlq?label=x&responseStatus=abc"),
        ("POST", "/v2/dlq/retry?labeel=x"),
        ("POST", "/v2/dlq/retry?host=127.0.0.1"),  # the DLQ takes no host/path filter
        ("DELETE", "/v2/messages?labeel=x"),
        ("DELETE", "/v2/messages?label=x&count=0"),
    ],
)
def test_a_misspelt_bulk_filter_is_a_400_that_changes_nothing(
    emu: Emulator, client: QStash, target: Callable[..., str], method: str, path: str
) -> None:
    fail(emu, client, target("/dead", 500), 2, "x")
    pending = [
        client.message.publish(url=target("/later"), body="p", delay="1h", label="x").message_id
        for _ in range(2)
    ]
    logs_before = len(client.log.list().logs)
    answer = api(emu, method, path)
    assert answer.status_code == 400 and "error" in answer.json()
    assert dlq_size(client) == 2
    assert all(client.message.get(mid).message_id == mid for mid in pending)
    assert len(client.log.list().logs) == logs_before


def test_dlq_bulk_delete_and_retry_take_count_and_cursor(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    fail(emu, client, target("/d", 500), 3, "del")
    fail(emu, client, target("/r", 500), 3, "retry")
    first = api(emu, "DELETE", "/v2/dlq?label=del&count=2").json()
    assert first["deleted"] == 2 and first["cursor"]
    rest = api(emu, "DELETE", f"/v2/dlq?label=del&count=2&cursor={first['cursor']}").json()
    assert rest == {"deleted": 1}
    page = api(emu, "POST", "/v2/dlq/retry?label=retry&count=2").json()
    assert len(page["responses"]) == 2 and page["cursor"]
    emu.settle()  # the retried messages fail again and land back in the DLQ, newer
    more = api(emu, "POST", f"/v2/dlq/retry?label=retry&count=2&cursor={page['cursor']}").json()
    assert len(more["responses"]) == 1 and "cursor" not in more
    retried = {r["messageId"] for r in page["responses"] + more["responses"]}
    assert len(retried) == 3


def test_bulk_cancel_count_counts_only_messages_actually_cancelled(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    ids = [
        client.message.publish(url=target("/c"), body=str(i), delay="1h", label="c").message_id
        for i in range(3)
    ]
    # The first is mid-attempt and already asked to stop: selected, but not cancellable again.
    first = emu.engine.state(emu.user).messages[ids[0]]
    emu.call_soon(setattr, first, "in_flight", True)
    emu.call_soon(emu.engine.cancel, emu.user, ids[0])
    answers = []
    for _ in range(5):
        answers.append(api(emu, "DELETE", "/v2/messages?label=c&count=1").json()["cancelled"])
        if answers[-1] == 0:
            break
    assert answers == [1, 1, 0]  # the loop the docs suggest ends, with nothing left
    assert set(emu.engine.state(emu.user).messages) == {ids[0]}  # its attempt still running
    page = api(emu, "DELETE", "/v2/messages?count=1").json()
    assert page == {"cancelled": 0}


def test_bulk_cancel_cursor_goes_on_after_the_last_one(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    for i in range(3):
        client.message.publish(url=target("/k"), body=str(i), delay="1h")
    first = api(emu, "DELETE", "/v2/messages?count=2").json()
    assert first["cancelled"] == 2 and first["cursor"]
    rest = api(emu, "DELETE", f"/v2/messages?count=2&cursor={first['cursor']}").json()
    assert rest == {"cancelled": 1}
    assert api(emu, "DELETE", "/v2/messages?cursor=bm9wZQ").status_code == 400


def test_bulk_cancel_pages_go_in_publish_order_and_ids_cancel_only_those(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    ids = [
        client.message.publish(url=target("/o"), body=str(i), delay="1h").message_id
        for i in range(6)
    ]
    pending = emu.engine.state(emu.user).messages
    by_ids = api(emu, "DELETE", "/v2/messages", json={"messageIds": [ids[4], ids[1], ids[4]]})
    assert by_ids.json() == {"cancelled": 2} and set(pending) == {ids[0], ids[2], ids[3], ids[5]}
    first = api(emu, "DELETE", "/v2/messages?count=2").json()
    assert first["cancelled"] == 2 and set(pending) == {ids[3], ids[5]}
    rest = api(emu, "DELETE", f"/v2/messages?count=1&cursor={first['cursor']}").json()
    assert rest["cancelled"] == 1 and set(pending) == {ids[5]}


# -- item 2 -------------------------------------------------------------------------------------


def test_cancel_answers_a_json_body(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    mid = client.message.publish(url=target("/x"), body="x", delay="1h").message_id
    answer = api(emu, "DELETE", f"/v2/messages/{mid}")
    assert answer.status_code == 200 and answer.json() == {"cancelled": 1}
    assert api(emu, "DELETE", f"/v2/messages/{mid}").status_code == 404


# -- items 4-7: JSON shapes ---------------------------------------------------------------------


def test_labels_flow_control_and_empty_bodies_in_messages_logs_and_schedules(
    emu: Emulator, target: Callable[..., str]
) -> None:
    url = target("/shape")
    headers = {
        "Upstash-Label": "first,second",
        "Upstash-Delay": "1h",
        "Upstash-Retry-Delay": "1000",
        "Upstash-Flow-Control-Key": "k",
        "Upstash-Flow-Control-Value": "parallelism=2",
    }
    mid = api(emu, "POST", f"/v2/publish/{url}", headers=headers).json()["messageId"]
    message = api(emu, "GET", f"/v2/messages/{mid}").json()
    assert message["label"] == "first" and message["labels"] == ["first", "second"]
    assert "body" not in message and "bodyBase64" not in message
    assert (message["flowControlKey"], message["parallelism"], message["period"]) == ("k", 2, 1)
    assert "rate" not in message
    [log] = api(emu, "GET", f"/v2/logs?messageId={mid}").json()["logs"]
    assert log["label"] == "first" and log["labels"] == ["first", "second"]
    assert log["retryDelayExpression"] == log["retryDelayExpr"] == "1000"
    assert (log["flowControlKey"], log["parallelism"], log["period"]) == ("k", 2, 1)
    assert "body" not in log
    created = api(
        emu,
        "POST",
        f"/v2/schedules/{url}",
        headers={"Upstash-Cron": "0 0 * * *", **headers},
    ).json()
    schedule = api(emu, "GET", f"/v2/schedules/{created['scheduleId']}").json()
    assert "body" not in schedule and schedule["period"] == 1 and "rate" not in schedule
    # The flow-control key's own page shows the one-second period too.
    api(emu, "DELETE", f"/v2/messages/{mid}")
    client = QStash(emu.token, base_url=emu.url, retry=False)
    client.message.publish(url=url, body="now", flow_control={"key": "k2", "parallelism": 1})
    emu.settle()
    assert api(emu, "GET", "/v2/flowControl/k2").json()["ratePeriod"] == 1


# -- item 9 -------------------------------------------------------------------------------------


def test_batch_bodies_may_be_json_values(emu: Emulator, target: Callable[..., str]) -> None:
    url = target("/b")
    values: list[Any] = [{"a": [1, None]}, [True], 1.5, False, "text", None]
    batch = [{"destination": url, "body": v} for v in values]
    assert api(emu, "POST", "/v2/batch", json=batch).status_code == 200
    emu.settle()
    bodies = [d.body for d in emu.engine.delivered if d.url == url]
    assert bodies == [b'{"a":[1,null]}', b"[true]", b"1.5", b"false", b"text", b""]


# -- item 10 ------------------------------------------------------------------------------------


def sent(emu: Emulator, url: str) -> list[tuple[str, str]]:
    [record] = [d for d in emu.engine.delivered if d.url == url]
    return [(k.lower(), v) for k, v in record.headers]


def test_forwarding_everything_drops_hop_by_hop_and_reserved_headers(
    emu: Emulator, target: Callable[..., str]
) -> None:
    url, callback = target("/all"), target("/cb")
    headers = {
        "Upstash-Header-Forward": "true",
        "Connection": "keep-alive, X-Private",
        "X-Private": "hop",
        "X-Plain": "kept",
        "Upstash-Forward-Upstash-Signature": "stale",
        "Upstash-Forward-Proxy-Connection": "keep-alive",
        "Upstash-Callback": callback,
        "Upstash-Callback-Forward-Content-Length": "1",
        "Upstash-Callback-Forward-Upstash-Retried": "9",
        "Upstash-Callback-Forward-X-Cb": "yes",
    }
    mid = api(emu, "POST", f"/v2/publish/{url}", headers=headers, content=b"whole body").json()[
        "messageId"
    ]
    emu.settle()
    out = sent(emu, url)
    names = [k for k, _ in out]
    assert ("x-plain", "kept") in out and "x-private" not in names
    assert "connection" not in names and "proxy-connection" not in names
    assert names.count("upstash-signature") == 1 and dict(out)["upstash-signature"] != "stale"
    cb = sent(emu, callback)
    cb_names = [k for k, _ in cb]
    assert ("x-cb", "yes") in cb and "content-length" not in cb_names
    assert cb_names.count("upstash-retried") == 1 and dict(cb)["upstash-retried"] == "0"
    [cb_delivery] = [d for d in emu.engine.delivered if d.url == callback]
    assert json.loads(cb_delivery.body)["sourceMessageId"] == mid
    shown = api(emu, "GET", f"/v2/messages/{mid}").json()["header"]
    assert "X-Private" not in shown and "Upstash-Signature" not in shown


def test_forwardable() -> None:
    for name in ("Content-Length", "transfer-encoding", "TE", "Proxy-Foo", "Host", "User-Agent"):
        assert not forwardable(name)
    assert forwardable("X-Anything") and forwardable("Upstash-Workflow-RunId")
    assert drop_reserved(
        [("Connection", "X-A, x-b"), ("X-A", "1"), ("X-B", "2"), ("X-C", "3")]
    ) == [("X-C", "3")]


# -- item 11 ------------------------------------------------------------------------------------


def js_stringify(raw: bytes) -> bytes:
    """What JSON.stringify(JSON.parse(raw)) gives."""
    return json.dumps(json.loads(raw), separators=(",", ":"), ensure_ascii=False).encode()


def test_json_written_for_a_destination_is_compact(
    emu: Emulator, target: Callable[..., str]
) -> None:
    emu.llm.reply(contains="Turkey", content="Ankara ✓ — «başkent»")
    cb, fcb = target("/llm-cb"), target("/fcb")
    request = {
        "model": "meta-llama/Meta-Llama-3-8B-Instruct",
        "messages": [{"role": "user", "content": "Turkey?"}],
    }
    headers = {"Upstash-Callback": cb, "Content-Type": "application/json"}
    assert api(emu, "POST", "/v2/publish/api/llm", headers=headers, json=request).is_success
    failing = {"Upstash-Failure-Callback": fcb, "Upstash-Retries": "0"}
    api(emu, "POST", f"/v2/publish/{target('/dead', 500)}", headers=failing, content="ü")
    emu.settle()
    for url in (cb, fcb):
        [delivery] = [d for d in emu.engine.delivered if d.url == url]
        assert js_stringify(delivery.body) == delivery.body, delivery.body[:120]
    [llm_cb] = [d for d in emu.engine.delivered if d.url == cb]
    inner = base64.b64decode(json.loads(llm_cb.body)["body"])
    assert js_stringify(inner) == inner and "Ankara ✓ — «başkent»".encode() in inner


@pytest.mark.parametrize("forged", [1, "x", {"a": 1}, [[1], [2]]])
@pytest.mark.parametrize(
    ("method", "path"),
    [("DELETE", "/v2/dlq"), ("POST", "/v2/dlq/retry"), ("GET", "/v2/dlq"), ("GET", "/v2/logs")],
)
def test_a_cursor_of_another_shape_is_a_400(
    emu: Emulator, client: QStash, target: Callable[..., str], forged: Any, method: str, path: str
) -> None:
    fail(emu, client, target("/dead", 500), 1, "x")
    cursor = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
    answer = api(emu, method, f"{path}?cursor={cursor}")
    assert answer.status_code == 400 and "cursor" in answer.json()["error"]
    assert dlq_size(client) == 1
