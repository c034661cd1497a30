"""The request log: one line per API request and per delivery attempt; colour or plain, JSON
for tools; levels; tokens never printed. In-process here, and from a real `dev` process."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator

import httpx
import pytest
from devserver_helpers import DEV_TOKEN, start_dev, stop
from qstash import QStash
from qstash_emulator import Emulator, VirtualClock
from qstash_emulator.devserver.request_log import RequestLog, attach, strip_tokens

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def logged() -> Iterator[tuple[Emulator, io.StringIO, Callable[..., RequestLog]]]:
    stream = io.StringIO()
    emulator = Emulator()
    logs: list[RequestLog] = []

    def make(**options: object) -> RequestLog:
        log = RequestLog(stream, colour=False, **options)  # type: ignore[arg-type]
        attach(emulator, log)
        logs.append(log)
        return log

    yield emulator, stream, make
    emulator.stop()


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_request_and_attempt_lines_name_what_people_look_for(
    logged: tuple[Emulator, io.StringIO, Callable[..., RequestLog]],
    target: Callable[..., str],
) -> None:
    emu, stream, make = logged
    make()
    emu.start()
    url = target("/flaky", 500, 200)
    res = httpx.post(
        f"{emu.url}/v2/publish/{url}?qstashToken={emu.token}",
        content=b"x",
        headers={"Upstash-Retries": "2"},
    )
    message_id = res.json()["messageId"]
    emu.settle()
    emu.run_until_idle()
    request, first, second = lines(stream)
    assert re.fullmatch(
        rf"00:00:00\.000Z POST /v2/publish/{re.escape(url)} 200 [0-9.]+ms  messageId={message_id}",
        request,
    )
    assert first.startswith(f"00:00:00.000Z → deliver {message_id} POST {url} 500 RETRY")
    assert "attempt 1/3" in first and "next retry 2025-01-01T00:00:12.182Z" in first
    assert second.startswith(f"00:00:12.182Z → deliver {message_id} POST {url} 200 DELIVERED")
    assert "attempt 2/3" in second and "next retry" not in second


def test_errors_failures_and_callbacks_get_their_lines(
    logged: tuple[Emulator, io.StringIO, Callable[..., RequestLog]],
    target: Callable[..., str],
) -> None:
    emu, stream, make = logged
    make()
    emu.start()
    client = QStash(emu.token, base_url=emu.url, retry=False)
    bad = httpx.post(
        f"{emu.url}/v2/publish/not-a-url", headers={"Authorization": f"Bearer {emu.token}"}
    )
    assert bad.status_code == 404  # no URL group of that name
    callback = target("/cb")
    client.message.publish(url=target("/dead", 500), body="x", retries=0, callback=callback)
    schedule_id = client.schedule.create(destination=target("/s"), cron="* * * * *")
    emu.advance("1m")
    text = stream.getvalue()
    assert "POST /v2/publish/not-a-url 404" in text and bad.json()["error"] in text
    assert "500 FAILED  attempt 1/1" in text
    assert "→ callback msg_" in text and f"POST {callback} 200 DELIVERED" in text
    assert f"POST /v2/schedules/{target('/s')} 200" in text and f"scheduleId={schedule_id}" in text
    assert re.search(rf"200 DELIVERED  attempt 1/4  scheduleId={schedule_id}", text)


def test_no_token_is_ever_printed(
    logged: tuple[Emulator, io.StringIO, Callable[..., RequestLog]],
    target: Callable[..., str],
) -> None:
    emu, stream, make = logged
    make(level="debug", fmt="json")
    emu.start()
    token = emu.token
    url = target("/t")
    httpx.post(f"{emu.url}/v2/publish/{url}?qstash_token={token}&keep=1", content=b"x")
    httpx.get(f"{emu.url}/v2/messages/{token}", headers={"Authorization": f"Bearer {token}"})
    httpx.post(f"{emu.url}/__emulator/advance?by=1s", headers={"Authorization": f"Bearer {token}"})
    emu.settle()
    text = stream.getvalue()
    assert token not in text
    assert "/v2/messages/***" in text  # the token in a path is masked
    assert "keep=1" in text and "qstash_token" not in text
    assert strip_tokens("/x?qstashToken=abc&a=1") == "/x?a=1"


def test_json_lines_for_tools_and_levels(
    logged: tuple[Emulator, io.StringIO, Callable[..., RequestLog]],
    target: Callable[..., str],
) -> None:
    emu, stream, make = logged
    make(fmt="json", level="warning")
    emu.start()
    client = QStash(emu.token, base_url=emu.url, retry=False)
    ok = client.message.publish(url=target("/ok"), body="x").message_id
    failing = client.message.publish(url=target("/no", 503), body="x", retries=1).message_id
    emu.run_until_idle()
    records = [json.loads(line) for line in lines(stream)]
    # Warning and up: the successful publishes and delivery are filtered out.
    assert all(r["level"] in ("warning", "error") for r in records)
    assert ok not in stream.getvalue()
    first, last = records
    assert first["kind"] == "delivery" and first["messageId"] == failing
    assert (first["status"], first["state"], first["attempt"], first["attempts"]) == (
        503,
        "RETRY",
        1,
        2,
    )
    assert first["nextRetryMs"] == 1735689600000 + 12182
    assert (last["state"], last["level"], last["attempt"]) == ("FAILED", "error", 2)
    assert "nextRetry" not in last


def test_colour_on_request_plain_otherwise() -> None:
    plain, painted = io.StringIO(), io.StringIO()
    clock = VirtualClock()
    for stream, colour in ((plain, False), (painted, True)):
        log = RequestLog(stream, clock=clock, colour=colour)
        log.request("GET", "/v2/queues", 404, 1.0, {}, "no queue")
    assert "\x1b[" not in plain.getvalue()
    assert "\x1b[33m" in painted.getvalue()  # a 4xx is a warning: yellow
    assert ANSI.sub("", painted.getvalue()) == plain.getvalue()
    # auto: a StringIO is no terminal
    assert RequestLog(io.StringIO()).colour is False
    with pytest.raises(ValueError):
        RequestLog(io.StringIO(), level="loud")


def test_the_dev_server_prints_the_log_and_quiet_silences_it(
    target: Callable[..., str],
) -> None:
    url = target("/cli")
    proc, port, _ = start_dev("--clock", "virtual", "--log-format", "json")
    try:
        base = f"http://127.0.0.1:{port}"
        res = httpx.post(
            f"{base}/v2/publish/{url}", headers={"Authorization": f"Bearer {DEV_TOKEN}"}
        )
        message_id = res.json()["messageId"]
        assert proc.stdout is not None
        request = json.loads(proc.stdout.readline())
        delivery = json.loads(proc.stdout.readline())
    finally:
        stop(proc)
    assert (request["kind"], request["method"], request["status"]) == ("request", "POST", 200)
    assert request["messageId"] == [message_id] and isinstance(request["ms"], float)
    assert (delivery["kind"], delivery["messageId"], delivery["status"]) == (
        "delivery",
        message_id,
        200,
    )
    quiet, port, _ = start_dev("--quiet")
    try:
        httpx.post(
            f"http://127.0.0.1:{port}/v2/publish/{url}",
            headers={"Authorization": f"Bearer {DEV_TOKEN}"},
        )
    finally:
        out = stop(quiet)
    assert out.strip() == "QStash emulator stopped."


def test_run_now_and_a_trigger_are_logged_like_any_delivery(
    logged: tuple[Emulator, io.StringIO, Callable[..., RequestLog]],
    target: Callable[..., str],
) -> None:
    emu, stream, make = logged
    make()
    emu.start()
    client = QStash(emu.token, base_url=emu.url, retry=False)
    url = target("/now")
    delayed = client.message.publish(url=url, body="x", delay="1d").message_id
    schedule_id = client.schedule.create(destination=url, cron="0 0 1 1 *")
    run_now = httpx.post(
        f"{emu.url}/v2/messages/{delayed}/retry", headers={"Authorization": f"Bearer {emu.token}"}
    )
    assert run_now.status_code == 200
    fired = httpx.post(
        f"{emu.url}/__emulator/schedules/{schedule_id}/trigger",
        headers={"Authorization": f"Bearer {emu.token}"},
    ).json()["messageId"]
    emu.settle()
    text = stream.getvalue()
    assert f"POST /v2/messages/{delayed}/retry 200" in text
    assert f"→ deliver {delayed} POST {url} 200 DELIVERED  attempt 1/4" in text
    assert f"emulator schedule {schedule_id} triggered" in text
    assert f"→ deliver {fired} POST {url} 200 DELIVERED  attempt 1/4  scheduleId={schedule_id}" in (
        text
    )


def test_log_level_and_colour_from_the_command_line(target: Callable[..., str]) -> None:
    dead = target("/dead", 500)
    proc, port, _ = start_dev("--clock", "virtual", "--log-level", "error", "--color", "always")
    try:
        base = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {DEV_TOKEN}"}
        httpx.get(f"{base}/v2/queues/nope", headers=auth)  # a 404: a warning, filtered out
        res = httpx.post(f"{base}/v2/publish/{dead}", headers={**auth, "Upstash-Retries": "0"})
        message_id = res.json()["messageId"]
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the first line printed is the failed attempt
    finally:
        out = stop(proc)
    assert "\x1b[31m" in line  # an error: red
    plain = ANSI.sub("", line)
    assert f"→ deliver {message_id} POST {dead} 500 FAILED  attempt 1/1" in plain
    assert "/v2/queues/nope" not in out and "/v2/publish" not in out
