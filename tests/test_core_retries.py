"""Retries on the virtual clock: the backoff ladder, retry-delay expressions, reset headers."""

from __future__ import annotations

import math
import socket
from collections.abc import Callable
from email.utils import formatdate

import pytest
from helpers import states, times
from pytest_httpserver import HTTPServer
from qstash import QStash, Receiver
from qstash_emulator import Emulator


def ladder(n: int) -> list[float]:
    """Cumulative attempt times under QStash's backoff min(86400, e^(2.5·k))."""
    out, t = [0.0], 0.0
    for k in range(1, n + 1):
        t += min(86400.0, math.exp(2.5 * k))
        out.append(round(t, 3))
    return out


def test_default_backoff_ladder_is_hit_exactly(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    url = target("/down", 500)
    res = client.message.publish(url=url, body="x")
    emu.settle()
    assert times(emu, url) == [0.0]
    emu.advance(12)  # e^2.5 = 12.18s: the first retry is not due yet
    assert times(emu, url) == [0.0]
    emu.run_until_idle()
    assert times(emu, url) == ladder(3)
    assert [d.retried for d in emu.engine.delivered] == [0, 1, 2, 3]
    assert states(client, res.message_id) == [
        "CREATED",
        "ACTIVE", "ERROR", "RETRY",
        "ACTIVE", "ERROR", "RETRY",
        "ACTIVE", "ERROR", "RETRY",
        "ACTIVE", "ERROR", "FAILED",
    ]  # fmt: skip


def test_retry_header_and_retried_header_count_up(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/flaky", 503, 503, 200)
    client.message.publish(url=url, body="x", retries=5)
    emu.run_until_idle()
    retried = [req.headers["Upstash-Retried"] for req, _ in httpserver.log]
    assert retried == ["0", "1", "2"]
    assert times(emu, url) == ladder(2)


def test_retries_zero_fails_after_one_attempt(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    url = target("/once", 500)
    res = client.message.publish(url=url, body="x", retries=0)
    emu.run_until_idle()
    assert times(emu, url) == [0.0]
    assert states(client, res.message_id)[-1] == "FAILED"
    assert len(client.dlq.list().messages) == 1


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1000", [0, 1, 2, 3]),
        ("1000 * (1 + retried)", [0, 1, 3, 6]),
        ("pow(2, retried) * 1000", [0, 1, 3, 7]),
        ("max(1000, pow(2, retried) * 100)", [0, 1, 2, 3]),
    ],
)
def test_retry_delay_expression(
    emu: Emulator,
    client: QStash,
    target: Callable[..., str],
    expression: str,
    expected: list[float],
) -> None:
    url = target("/expr", 500)
    client.message.publish(url=url, body="x", retries=3, retry_delay=expression)
    emu.run_until_idle()
    assert times(emu, url) == expected


@pytest.mark.parametrize(
    ("name", "value", "delay"),
    [
        ("Retry-After", "30", 30.0),
        ("Retry-After", "6m5s", 365.0),
        ("X-RateLimit-Reset", "90", 90.0),
        ("X-RateLimit-Reset-Requests", "1m30s", 90.0),
        ("X-RateLimit-Reset-Tokens", "500ms", 0.5),
    ],
)
def test_reset_headers_set_the_next_attempt(
    emu: Emulator,
    client: QStash,
    target: Callable[..., str],
    name: str,
    value: str,
    delay: float,
) -> None:
    url = target("/limited", 429, 200, headers={name: value})
    client.message.publish(url=url, body="x")
    emu.run_until_idle()
    assert times(emu, url) == [0.0, delay]


def test_retry_after_as_an_http_date(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    url = target(
        "/dated", 429, 200, headers={"Retry-After": formatdate(emu.now + 600, usegmt=True)}
    )
    client.message.publish(url=url, body="x")
    emu.run_until_idle()
    assert times(emu, url) == [0.0, 600.0]


def test_a_reset_beyond_a_day_falls_back_to_the_backoff(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    url = target("/far", 429, 200, headers={"Retry-After": str(3 * 86400)})
    client.message.publish(url=url, body="x")
    emu.run_until_idle()
    assert times(emu, url) == ladder(1)


def test_489_non_retryable_goes_straight_to_the_dlq(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    url = target("/fatal", 489, headers={"Upstash-NonRetryable-Error": "true"})
    res = client.message.publish(url=url, body="x", retries=5)
    emu.run_until_idle()
    assert times(emu, url) == [0.0]
    assert states(client, res.message_id)[-1] == "FAILED"
    [dlq] = client.dlq.list().messages
    assert dlq.message_id == res.message_id and dlq.response_status == 489


def test_489_without_the_header_is_retried(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    url = target("/soft", 489, 200)
    client.message.publish(url=url, body="x")
    emu.run_until_idle()
    assert len(times(emu, url)) == 2


def test_a_refused_connection_is_a_failed_attempt(emu: Emulator, client: QStash) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/nobody"  # nothing listens here
    res = client.message.publish(url=url, body="x", retries=1)
    emu.run_until_idle()
    assert times(emu, url) == ladder(1)
    logs = client.log.list(filter={"message_id": res.message_id}).logs
    errors = [log.error for log in logs if log.state.value == "ERROR"]
    assert len(errors) == 2 and all(e and "request failed" in e for e in errors)
    [dlq] = client.dlq.list().messages
    assert dlq.response_status == 0


def test_a_timeout_is_a_failed_attempt(emu: Emulator, client: QStash) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    release = threading.Event()

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            release.wait(10)  # held until the emulator has given up
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/slow"
        res = client.message.publish(url=url, body="x", retries=0, timeout="1s")
        emu.settle()
        logs = client.log.list(filter={"message_id": res.message_id}).logs
        assert next(log.state.value for log in logs) == "FAILED"
        assert any(log.error and "timed out" in log.error for log in logs)
    finally:
        release.set()
        server.shutdown()


def test_each_attempt_is_signed_with_the_key_current_at_that_time(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/rot", 500, 200)
    old = Receiver(emu.user.current_signing_key, emu.user.next_signing_key)
    client.message.publish(url=url, body="x")
    emu.settle()
    keys = client.signing_key.rotate()
    emu.run_until_idle()
    first, second = (req for req, _ in httpserver.log)
    # A receiver configured before the rotation (current + next) verifies both attempts...
    for req in (first, second):
        old.verify(signature=req.headers["Upstash-Signature"], body="x", url=url)
    # ...and one configured after it verifies the attempt signed after the rotation.
    new = Receiver(keys.current, keys.next)
    new.verify(signature=second.headers["Upstash-Signature"], body="x", url=url)
    assert keys.current == old._next_signing_key


def test_with_several_reset_headers_the_latest_reset_wins(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    url = target(
        "/both",
        429,
        200,
        headers={"X-RateLimit-Reset-Requests": "20s", "X-RateLimit-Reset-Tokens": "1m"},
    )
    client.message.publish(url=url, body="x")
    emu.run_until_idle()
    assert times(emu, url) == [0.0, 60.0]
