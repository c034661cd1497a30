"""Injected faults, destination rewrites, rate limits and quotas."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from helpers import requests_to, states, times
from pytest_httpserver import HTTPServer
from qstash import QStash, Receiver
from qstash.errors import DailyMessageLimitExceededError, RateLimitExceededError
from qstash_emulator import Emulator
from qstash_emulator.controls.limits import Limits


def test_fail_n_times_then_succeed(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/app")
    emu.faults.add(url, fail_times=2, status=503)
    res = client.message.publish(url=url, body="x")
    emu.run_until_idle()
    assert len(times(emu, url)) == 3
    assert len(requests_to(httpserver, "/app")) == 1  # only the third attempt reached it
    assert states(client, res.message_id)[-1] == "DELIVERED"


def test_a_sequence_of_answers(emu: Emulator, client: QStash, target: Callable[..., str]) -> None:
    url = target("/seq")
    emu.faults.add(url, statuses=[500, "timeout", "drop", 404])
    res = client.message.publish(url=url, body="x", retries=5)
    emu.run_until_idle()
    logs = client.log.list(filter={"message_id": res.message_id}).logs
    errors = [log.error for log in reversed(logs) if log.state.value == "ERROR"]
    assert errors[0] == "500 Internal Server Error"
    assert errors[1] is not None and "timed out" in errors[1]
    assert errors[2] is not None and "connection reset" in errors[2]
    assert errors[3] == "404 Not Found"
    assert states(client, res.message_id)[-1] == "DELIVERED"  # the fifth attempt got through


def test_timeout_for_every_attempt_ends_in_the_dlq_with_a_failure_callback(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url, fcb = target("/hang"), target("/fcb")
    emu.faults.add(url, timeout=True)
    client.message.publish(url=url, body="x", retries=2, failure_callback=fcb)
    emu.run_until_idle()
    assert len(times(emu, url)) == 3 and requests_to(httpserver, "/hang") == []
    assert len(requests_to(httpserver, "/fcb")) == 1
    assert len(client.dlq.list().messages) == 1


def test_retry_after_and_non_retryable_faults(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    slow, fatal = target("/ra"), target("/nr")
    emu.faults.add(slow, retry_after="45", times=1)
    emu.faults.add(fatal, non_retryable=True)
    client.message.publish(url=slow, body="x")
    client.message.publish(url=fatal, body="x")
    emu.run_until_idle()
    assert times(emu, slow) == [0.0, 45.0]
    assert times(emu, fatal) == [0.0]
    [dlq] = client.dlq.list().messages
    assert dlq.url == fatal and dlq.response_status == 489


def test_prefix_faults_and_reset_clears_them(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    a, b = target("/svc/a"), target("/svc/b")
    emu.faults.add(
        a.rsplit("/", 1)[0] + "/*",
        statuses=[500],
    )
    client.message.publish(url=a, body="x", retries=0)
    client.message.publish(url=b, body="x", retries=0)
    emu.settle()
    assert len(client.dlq.list().messages) == 1  # the single scripted answer went to the first
    emu.reset()
    assert emu.faults.rules == []


def test_rewrite_delivers_locally_and_signs_the_published_url(
    emu: Emulator, client: QStash, receiver: Receiver, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/api/hook").respond_with_data("ok")
    emu.delivery.rewrite("https://myapp.example.com", httpserver.url_for("/").rstrip("/"))
    client.message.publish(url="https://myapp.example.com/api/hook?x=1", body="hello")
    emu.settle()
    [req] = requests_to(httpserver, "/api/hook")
    assert req.args["x"] == "1"
    receiver.verify(
        signature=req.headers["Upstash-Signature"],
        body="hello",
        url="https://myapp.example.com/api/hook?x=1",
    )


def test_daily_message_limit(emu: Emulator, client: QStash, target: Callable[..., str]) -> None:
    url = target("/daily")
    emu.limits.configure(daily_messages=2)
    client.message.publish(url=url, body="1")
    client.message.publish(url=url, body="2")
    with pytest.raises(DailyMessageLimitExceededError) as info:
        client.message.publish(url=url, body="3")
    assert info.value.limit == "2" and info.value.remaining == "0"
    assert info.value.reset == str(int(emu.now) + 86400)  # virtual time starts at midnight UTC
    emu.advance("1d")
    client.message.publish(url=url, body="4")  # a new day
    emu.settle()
    assert [r.body for r in emu.engine.delivered] == [b"1", b"2", b"4"]


def test_rejected_publishes_do_not_count(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    emu.limits.configure(daily_messages=1)
    with pytest.raises(Exception, match="400"):
        client.message.publish(url=target("/x"), body="x", retries=-1)
    client.message.publish(url=target("/x"), body="x")


def test_burst_limit_on_other_endpoints(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    emu.limits.configure(burst=2)
    client.dlq.list()
    client.log.list()
    with pytest.raises(RateLimitExceededError) as info:
        client.signing_key.get()
    assert info.value.limit == "2" and info.value.remaining == "0"
    for i in range(5):  # publishing has no per-second limit
        client.message.publish(url=target("/burst"), body=str(i))
    emu.advance(1)
    client.signing_key.get()


def test_limits_per_user(emu: Emulator, target: Callable[..., str]) -> None:
    other = emu.users["testUser1"]
    emu.limits.configure("testUser1", daily_messages=0)
    QStash(emu.token, base_url=emu.url, retry=False).message.publish(url=target("/u"), body="x")
    with pytest.raises(DailyMessageLimitExceededError):
        QStash(other.token, base_url=emu.url, retry=False).message.publish(
            url=target("/u"), body="x"
        )


def test_chat_limits_on_the_clock() -> None:
    with Emulator() as emu:
        limits: Limits = emu.limits
        limits.configure(chat_requests=2, chat_tokens=100)
        assert limits.check_chat("defaultUser", 10) is None
        assert limits.check_chat("defaultUser", 10) is None
        headers = limits.check_chat("defaultUser", 10)
        assert headers is not None
        assert headers["x-ratelimit-limit-requests"] == "2"
        assert headers["x-ratelimit-remaining-requests"] == "0"
        assert headers["x-ratelimit-reset-requests"] == "60s"
        emu.advance(60)
        assert limits.check_chat("defaultUser", 90) is None
        over = limits.check_chat("defaultUser", 20)
        assert over is not None and over["x-ratelimit-remaining-tokens"] == "10"


def test_configure_rejects_unknown_limits(emu: Emulator) -> None:
    with pytest.raises(TypeError, match="unknown"):
        emu.limits.configure(dayly=3)


def test_reset_forgets_rewrites(emu: Emulator) -> None:
    emu.delivery.rewrite("https://myapp.example.com", "http://127.0.0.1:3000")
    emu.reset()
    assert emu.delivery.rewrites == []
