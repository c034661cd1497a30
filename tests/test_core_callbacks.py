"""Callbacks and failure callbacks: the documented body, signed, retried and logged."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

from helpers import requests_to, states
from pytest_httpserver import HTTPServer
from qstash import QStash, Receiver
from qstash_emulator import Emulator


def test_callback_gets_the_documented_body(
    emu: Emulator,
    client: QStash,
    receiver: Receiver,
    httpserver: HTTPServer,
    target: Callable[..., str],
) -> None:
    url = target("/work", headers={"X-Answer": "42"})
    cb = target("/cb")
    res = client.message.publish(
        url=url,
        body="job",
        method="PUT",
        headers={"X-Job": "7"},
        callback=cb,
        callback_headers={"Upstash-Callback-Forward-X-Cb": "hi"},
    )
    emu.settle()
    [req] = requests_to(httpserver, "/cb")
    receiver.verify(
        signature=req.headers["Upstash-Signature"], body=req.get_data(as_text=True), url=cb
    )
    assert req.headers["X-Cb"] == "hi"
    assert req.headers["Content-Type"] == "application/json"
    body = json.loads(req.get_data())
    assert body["status"] == 200
    assert base64.b64decode(body["body"]) == b"answer 1"
    assert body["header"]["X-Answer"] == ["42"]
    assert body["retried"] == 0 and body["maxRetries"] == 3
    assert body["sourceMessageId"] == res.message_id
    assert body["url"] == url and body["method"] == "PUT"
    assert body["sourceHeader"]["X-Job"] == ["7"]
    assert base64.b64decode(body["sourceBody"]) == b"job"
    assert body["createdAt"] == body["notBefore"] == str(int(emu.now * 1000))
    assert body["callerIP"] == "127.0.0.1"
    assert "dlqId" not in body


def test_callback_is_called_after_every_attempt(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/twice", 500, 200)
    cb = target("/cb-each")
    client.message.publish(url=url, body="x", callback=cb)
    emu.run_until_idle()
    bodies = [json.loads(r.get_data()) for r in requests_to(httpserver, "/cb-each")]
    assert [(b["status"], b["retried"]) for b in bodies] == [(500, 0), (200, 1)]


def test_failure_callback_after_retries_are_exhausted(
    emu: Emulator,
    client: QStash,
    receiver: Receiver,
    httpserver: HTTPServer,
    target: Callable[..., str],
) -> None:
    url = target("/broken", 500)
    fcb = target("/failed")
    res = client.message.publish(url=url, body="x", retries=2, failure_callback=fcb)
    emu.run_until_idle()
    [req] = requests_to(httpserver, "/failed")
    receiver.verify(
        signature=req.headers["Upstash-Signature"], body=req.get_data(as_text=True), url=fcb
    )
    body = json.loads(req.get_data())
    assert body["status"] == 500 and body["retried"] == 2 and body["maxRetries"] == 2
    assert body["sourceMessageId"] == res.message_id
    [dlq] = client.dlq.list().messages
    assert body["dlqId"] == dlq.dlq_id


def test_callbacks_are_messages_themselves_retried_and_logged(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/ok")
    cb = target("/cb-flaky", 500, 200)
    client.message.publish(
        url=url, body="x", callback=cb, callback_headers={"Upstash-Callback-Retries": "1"}
    )
    emu.run_until_idle()
    assert len(requests_to(httpserver, "/cb-flaky")) == 2
    cb_logs = client.log.list(filter={"url": cb}).logs
    [message_id] = {log.message_id for log in cb_logs}
    assert states(client, message_id)[-1] == "DELIVERED"
    assert {log.max_retries for log in cb_logs} == {1}


def test_callback_options_method_and_delay(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/ok2")
    cb = target("/cb-put")
    client.message.publish(
        url=url,
        body="x",
        callback=cb,
        callback_headers={"Upstash-Callback-Method": "PUT", "Upstash-Callback-Delay": "30s"},
    )
    emu.settle()
    assert requests_to(httpserver, "/cb-put") == []
    emu.advance(30)
    [req] = requests_to(httpserver, "/cb-put")
    assert req.method == "PUT"
