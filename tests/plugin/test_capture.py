"""Built-in capture URLs over HTTP: what any client (not only Python) can use."""

from __future__ import annotations

import base64

import httpx
import pytest
from pytest_qstash import QStashHarness
from qstash import QStash
from qstash_emulator.controls.captures import Reply, make_reply


def test_sub_paths_query_and_methods_are_recorded(
    qstash: QStashHarness, qstash_client: QStash
) -> None:
    hook = qstash.capture("api")
    url = hook.url_for("/orders/7?expand=1")
    qstash_client.message.publish(url=url, body="", method="PUT")
    [request] = hook.requests
    assert (request.method, request.path) == ("PUT", "/__capture/api/orders/7?expand=1")
    qstash.assert_delivered(url, method="PUT")


def test_control_routes(qstash: QStashHarness, qstash_client: QStash) -> None:
    base = f"{qstash.url}/__captures"
    answer = httpx.put(
        f"{base}/jobs",
        json={"status": 202, "body": "queued", "headers": {"X-Job": "1"}, "sequence": [500]},
    )
    assert answer.status_code == 200, answer.text
    qstash_client.message.publish(url=qstash.capture("jobs").url, body="j", retries=1)
    qstash.run_until_idle()
    assert httpx.get(base).json() == {"jobs": 2}
    records = httpx.get(f"{base}/jobs").json()
    assert [r["status"] for r in records] == [500, 202]
    assert records[0]["body"] == "j" and base64.b64decode(records[0]["body_base64"]) == b"j"
    [ok] = qstash.deliveries(status=202)
    assert ok.response_body == b"queued" and ok.retried == 1
    assert httpx.delete(f"{base}/jobs").json() == {"ok": True}
    assert httpx.get(f"{base}/jobs").json() == []


def test_control_routes_reject_bad_input(qstash: QStashHarness) -> None:
    base = f"{qstash.url}/__captures"
    assert httpx.put(f"{base}/x", content=b"[1]").status_code == 400
    assert httpx.put(f"{base}/x", json={"status": 999}).status_code == 400
    assert httpx.post(f"{qstash.url}/__capture/bad%20name", content=b"").status_code == 400


def test_captures_are_cleared_between_tests(qstash: QStashHarness) -> None:
    assert httpx.get(f"{qstash.url}/__captures").json() == {}


def test_make_reply_forms() -> None:
    assert make_reply(204) == Reply(204)
    assert make_reply({"status": 201, "body": {"ok": True}}) == Reply(
        201, b'{"ok": true}', (("Content-Type", "application/json"),)
    )
    assert make_reply(status=200, body="text", headers={"A": "b"}) == Reply(
        200, b"text", (("A", "b"),)
    )
    with pytest.raises(ValueError):
        make_reply(42)
