"""A standalone server on a virtual clock, driven from other processes: the CLI verbs
(`advance`, `run-until-idle`, `now`, `trigger`, `run-now`, `reset`) and the /__emulator/ routes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from devserver_helpers import DEV_TOKEN, start_dev, stop
from helpers import requests_to
from pytest_httpserver import HTTPServer
from qstash import QStash, Receiver
from qstash_emulator import Emulator
from qstash_emulator.devserver.remote import Remote
from werkzeug import Response

START = "2025-03-01T12:00:00.000Z"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    proc, port, banner = start_dev("--clock", "virtual", "--start-time", START, "--quiet")
    assert any(line.startswith(f"Virtual clock at {START}") for line in banner)
    yield f"http://127.0.0.1:{port}"
    stop(proc)


@pytest.fixture
def base(server: str) -> str:
    Remote(server, DEV_TOKEN).reset()  # a fresh server per test, back at its start time
    return server


def verb(url: str, *args: str, token: str = DEV_TOKEN) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qstash_emulator", *args, "--url", url, "--token", token],
        capture_output=True,
        text=True,
        timeout=60,
    )


def ok(url: str, *args: str) -> str:
    done = verb(url, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_time_moves_only_when_another_process_moves_it(base: str, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/later").respond_with_data("ok")
    client = QStash(DEV_TOKEN, base_url=base)
    client.message.publish(url=httpserver.url_for("/later"), body="hi", delay="1h")
    assert ok(base, "now") == START
    assert ok(base, "advance", "59m") == "2025-03-01T12:59:00.000Z"
    assert requests_to(httpserver, "/later") == []
    assert ok(base, "advance", "1m") == "2025-03-01T13:00:00.000Z"
    [request] = requests_to(httpserver, "/later")  # delivered before `advance` answered
    receiver = Receiver(
        current_signing_key="sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r",
        next_signing_key="sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs",
    )
    receiver.verify(
        signature=request.headers["Upstash-Signature"],
        body=request.get_data(as_text=True),
        url=httpserver.url_for("/later"),
    )
    logs = client.log.list().logs
    assert logs[0].state.value == "DELIVERED"
    assert logs[0].time == 1740834000000  # 13:00 on the virtual clock


def test_run_until_idle_then_reset(base: str, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/down").respond_with_response(Response("no", status=500))
    client = QStash(DEV_TOKEN, base_url=base)
    client.message.publish(url=httpserver.url_for("/down"), body="x", retries=2)
    Remote(base).settle()  # due now: delivered at once, without moving time
    assert len(requests_to(httpserver, "/down")) == 1
    ok(base, "run-until-idle")
    assert len(requests_to(httpserver, "/down")) == 3
    assert len(client.dlq.list().messages) == 1
    assert ok(base, "reset") == START
    assert client.dlq.list().messages == []
    assert client.log.list().logs == []


def test_trigger_and_run_now_verbs(base: str, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/tick").respond_with_data("ok")
    httpserver.expect_request("/delayed").respond_with_data("ok")
    client = QStash(DEV_TOKEN, base_url=base)
    schedule_id = client.schedule.create(
        destination=httpserver.url_for("/tick"), cron="0 0 1 1 *", body="t"
    )
    message_id = ok(base, "trigger", schedule_id)
    assert message_id.startswith("msg_")
    [tick] = requests_to(httpserver, "/tick")
    assert tick.headers["Upstash-Schedule-Id"] == schedule_id
    assert tick.headers["Upstash-Message-Id"] == message_id
    delayed = client.message.publish(
        url=httpserver.url_for("/delayed"), body="d", delay="7d"
    ).message_id
    assert ok(base, "run-now", delayed) == delayed
    Remote(base).settle()  # the release is due now: wait for it without moving time
    assert len(requests_to(httpserver, "/delayed")) == 1
    assert ok(base, "now") == START
    missing = verb(base, "trigger", "no-such-schedule")
    assert missing.returncode == 1 and "404" in missing.stderr


def test_routes_want_a_token_and_refuse_bad_input_without_moving_time(base: str) -> None:
    assert httpx.get(f"{base}/__emulator/clock").status_code == 401
    assert verb(base, "advance", "1h", token="wrong").returncode == 1
    auth = {"Authorization": f"Bearer {DEV_TOKEN}"}
    bad = httpx.post(f"{base}/__emulator/advance?by=soon", headers=auth)
    assert bad.status_code == 400 and "invalid by" in bad.json()["error"]
    negative = httpx.post(f"{base}/__emulator/advance", json={"seconds": -5}, headers=auth)
    assert negative.status_code == 400
    missing = httpx.post(f"{base}/__emulator/advance", headers=auth)
    assert missing.status_code == 400
    for body in ('{"seconds": 1e400}', '{"seconds": NaN}', '{"by": "99999999d"}', "[1]", "{"):
        answer = httpx.post(f"{base}/__emulator/advance", content=body, headers=auth)
        assert answer.status_code == 400 and "error" in answer.json(), body
    unknown = httpx.post(f"{base}/__emulator/rewind", headers=auth)
    assert unknown.status_code == 404 and "error" in unknown.json()
    by_json = httpx.post(f"{base}/__emulator/advance", json={"by": "90s"}, headers=auth)
    assert by_json.json()["time"] == "2025-03-01T12:01:30.000Z"
    clock = httpx.get(f"{base}/__emulator/clock", headers=auth).json()
    assert clock == {"now": 1740830490000, "time": "2025-03-01T12:01:30.000Z", "virtual": True}


def test_a_real_clock_refuses_to_move() -> None:
    with Emulator(clock="real") as emu:
        auth = {"Authorization": f"Bearer {emu.token}"}
        answer = httpx.post(f"{emu.url}/__emulator/advance?by=1h", headers=auth)
        assert answer.status_code == 400 and "--clock virtual" in answer.json()["error"]
        assert httpx.get(f"{emu.url}/__emulator/clock", headers=auth).json()["virtual"] is False


def test_verbs_report_an_unreachable_server() -> None:
    done = verb("http://127.0.0.1:9", "now")
    assert done.returncode == 1 and "cannot reach the emulator" in done.stderr


def test_version() -> None:
    from qstash_emulator.cli import version

    done = subprocess.run(
        [sys.executable, "-m", "qstash_emulator", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"qstash-emulator {version()}"
    assert version()[0].isdigit()


def test_start_time_spellings() -> None:
    import argparse

    from qstash_emulator.cli import start_time

    assert start_time("2025-03-01T12:00:00Z") == 1740830400.0
    assert start_time("2025-03-01T15:00:00+03:00") == 1740830400.0
    assert start_time("1740830400") == 1740830400.0
    for bad in ("2025-03-01T12:00:00", "tomorrow"):
        with pytest.raises(argparse.ArgumentTypeError):
            start_time(bad)
