"""The dashboard over plain HTTP: who may act, bad input, the event stream, the dev server."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import httpx
import pytest
from qstash import QStash
from qstash_emulator import Emulator
from qstash_emulator.dashboard.cron_words import describe
from qstash_emulator.dashboard.security import COOKIE, HEADER


def session(emu: Emulator) -> tuple[httpx.Client, str]:
    """A client that opened the dashboard page (so it holds the key cookie), and the key."""
    http = httpx.Client(base_url=emu.url)
    page = http.get("/__dashboard/messages")
    assert page.status_code == 200
    key = page.text.split('name="dashboard-key" content="', 1)[1].split('"', 1)[0]
    assert http.cookies.get(f"{COOKIE}_{emu.port}") == key
    return http, key


def test_actions_need_the_key_in_cookie_and_header(emu: Emulator, client: QStash) -> None:
    res = client.message.publish_json(url=f"{emu.url}/__capture/x", body={}, delay="1h")
    path = f"/__dashboard/api/messages/{res.message_id}/cancel"
    http, key = session(emu)

    no_header = http.post(path)
    assert no_header.status_code == 403
    assert "dashboard key" in no_header.json()["error"]
    no_cookie = httpx.post(emu.url + path, headers={HEADER: key})
    assert no_cookie.status_code == 403
    wrong = http.post(path, headers={HEADER: key[:-1] + "x"})
    assert wrong.status_code == 403
    assert client.message.get(res.message_id).message_id == res.message_id  # still there

    ok = http.post(path, headers={HEADER: key})
    assert ok.status_code == 200, ok.text
    assert ok.json()["ok"] is True
    states = [log.state.value for log in client.log.list().logs]  # logged like the API's
    assert states[:2] == ["CANCELED", "CANCEL_REQUESTED"]


def test_a_host_allowed_for_the_api_does_not_open_the_dashboard() -> None:
    # --allow-host lets a name reach the API (a container's host name, say); the dashboard and
    # its actions stay on loopback names and addresses only.
    with Emulator(allowed_hosts=["app.test"]) as emu:
        auth = {"Authorization": f"Bearer {emu.token}"}
        api = httpx.get(f"{emu.url}/v2/queues", headers={**auth, "Host": "app.test"})
        assert api.status_code == 200
        page = httpx.get(f"{emu.url}/__dashboard/messages", headers={"Host": "app.test"})
        assert page.status_code == 403
        for host in (f"localhost:{emu.port}", f"127.0.0.2:{emu.port}", f"[::1]:{emu.port}"):
            assert httpx.get(f"{emu.url}/__dashboard/messages", headers={"Host": host}).is_success


def test_pages_and_actions_refuse_non_local_hosts(emu: Emulator) -> None:
    http, key = session(emu)
    rebound = {"Host": "attacker.example:80"}
    page = http.get("/__dashboard/messages", headers=rebound)
    assert page.status_code == 403
    assert COOKIE not in page.headers.get("set-cookie", "")  # the key is not handed out
    events = http.get("/__dashboard/events", headers=rebound)
    assert events.status_code == 403
    action = http.post(
        "/__dashboard/api/time/advance", json={"by": "1h"}, headers={**rebound, HEADER: key}
    )
    assert action.status_code == 403
    assert emu.now == 1_735_689_600.0
    for host in ("localhost:8080", "[::1]:8080", "app.localhost"):
        assert http.get("/__dashboard/time", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/__dashboard/api/dlq/retry", {"dlqIds": "nope"}, 400),
        ("/__dashboard/api/dlq/retry", {"dlqIds": ["missing"]}, 404),
        ("/__dashboard/api/dlq/delete", {}, 400),
        ("/__dashboard/api/time/advance", {"by": "soon"}, 400),
        ("/__dashboard/api/time/advance", {"by": 5}, 400),
        ("/__dashboard/api/time/advance", {"by": "next"}, 400),  # nothing is due
        ("/__dashboard/api/time/advance", {"by": "99999999d"}, 400),
        ("/__dashboard/api/schedules/nope/pause", {}, 404),
        ("/__dashboard/api/schedules/nope/explode", {}, 404),
        ("/__dashboard/api/queues/nope/pause", {}, 404),
        ("/__dashboard/api/flow-control/nope/resume", {}, 404),
        ("/__dashboard/api/messages/nope/cancel", {}, 404),
    ],
)
def test_bad_actions_answer_json_errors(emu: Emulator, path: str, body: Any, status: int) -> None:
    http, key = session(emu)
    response = http.post(path, json=body, headers={HEADER: key})
    assert response.status_code == status
    assert isinstance(response.json()["error"], str)
    assert emu.now == 1_735_689_600.0


def test_not_json_is_a_400(emu: Emulator) -> None:
    http, key = session(emu)
    response = http.post("/__dashboard/api/time/advance", content=b"{", headers={HEADER: key})
    assert response.status_code == 400
    assert response.json() == {"error": "request body is not valid JSON"}


def test_the_emulator_names_its_dashboard(emu: Emulator) -> None:
    assert emu.dashboard_url == f"http://127.0.0.1:{emu.port}/__dashboard"
    home = httpx.get(emu.dashboard_url)  # redirects to the message list
    assert home.status_code == 302 and home.headers["location"] == "/__dashboard/messages"


def test_unknown_message_page_is_a_404(emu: Emulator) -> None:
    response = httpx.get(f"{emu.url}/__dashboard/messages/msg_nope")
    assert response.status_code == 404


def test_event_stream_reports_changes_and_the_clock(emu: Emulator, client: QStash) -> None:
    with httpx.stream("GET", f"{emu.url}/__dashboard/events", timeout=10) as stream:
        assert stream.headers["content-type"] == "text/event-stream"
        lines = stream.iter_lines()
        first = _next_event(lines)
        assert first[0] == "change"
        assert first[1]["now"] == 1_735_689_600_000 and first[1]["virtual"] is True
        client.message.publish_json(url=f"{emu.url}/__capture/x", body={}, delay="1m")
        second = _next_event(lines)
        assert second[0] == "change" and second[1]["version"] > first[1]["version"]
        emu.advance("1m")
        while (event := _next_event(lines))[1].get("now") != 1_735_689_660_000:
            assert event[0] in ("change", "clock")


def _next_event(lines: Any) -> tuple[str, dict[str, Any]]:
    import json

    name = ""
    for line in lines:
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            return name, json.loads(line[6:])
    raise AssertionError("stream ended")


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("*/5 * * * *", "every 5 minutes (UTC)"),
        ("0 9 * * 1-5", "at 09:00 on Monday through Friday (UTC)"),
        ("0 * * * *", "every hour at minute 0 (UTC)"),
        ("* * * * *", "every minute (UTC)"),
        ("30 8 1,15 * *", "at 08:30 on day 1 and 15 of the month (UTC)"),
        ("0 0 * JAN,JUL SUN", "at 00:00 on Sunday in January and July (UTC)"),
        ("CRON_TZ=Europe/Berlin 0 12 * * *", "at 12:00 (Europe/Berlin)"),
        ("0 */2 * * *", "every 2 hours at minute 0 (UTC)"),
        ("5,35 8,20 * * *", "at minute 5 and 35, during hour 8 and 20 (UTC)"),
    ],
)
def test_cron_in_words(expr: str, words: str) -> None:
    assert describe(expr) == words


def dev_server(*args: str) -> tuple[subprocess.Popen[str], int]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "qstash_emulator", "dev", f"--port={port}", "--in-memory", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, port


def test_dev_server_on_a_virtual_clock_is_advanced_from_the_dashboard() -> None:
    proc, port = dev_server("--clock", "virtual")
    try:
        assert proc.stdout is not None
        while "Dashboard:" not in (line := proc.stdout.readline()):
            assert line, "the server exited"
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}")
        page = http.get("/__dashboard/time")
        assert 'data-testid="advance-1h"' in page.text
        key = page.text.split('name="dashboard-key" content="', 1)[1].split('"', 1)[0]
        before = page.text.split('data-now="', 1)[1].split('"', 1)[0]
        moved = http.post("/__dashboard/api/time/advance", json={"by": "1h"}, headers={HEADER: key})
        assert moved.status_code == 200, moved.text
        assert moved.json()["now"] == int(before) + 3_600_000
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_standalone_server_prints_the_dashboard_and_serves_it_on_the_real_clock() -> None:
    proc, port = dev_server()
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("QStash emulator ")
        assert line.endswith(f"running at http://127.0.0.1:{port}")
        banner = [proc.stdout.readline().strip() for _ in range(3)]
        assert f"Dashboard: http://127.0.0.1:{port}/__dashboard" in banner
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}")
        page = http.get("/__dashboard/time")
        assert page.status_code == 200
        assert "real" in page.text and "advance-1h" not in page.text
        key = page.text.split('name="dashboard-key" content="', 1)[1].split('"', 1)[0]
        refused = http.post(
            "/__dashboard/api/time/advance", json={"by": "1h"}, headers={HEADER: key}
        )
        assert refused.status_code == 400
        assert "real clock" in refused.json()["error"]
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_dlq_pages(emu: Emulator, client: QStash) -> None:
    url = f"{emu.url}/__capture/down"
    emu.faults.add(url, status=500)
    for n in range(60):
        client.message.publish(url=url, body=f"n{n}", retries=0)
    emu.settle()
    first = httpx.get(f"{emu.url}/__dashboard/dlq").text
    second = httpx.get(f"{emu.url}/__dashboard/dlq?page=1").text
    assert first.count("data-dlq-id=") == 50 and "60 entries · page 1 of 2" in first
    assert second.count("data-dlq-id=") == 10 and "page 2 of 2" in second


def test_odd_query_parameters_are_ignored(emu: Emulator, client: QStash) -> None:
    client.message.publish(url=f"{emu.url}/__capture/x", body="hi")
    for query in ("page=abc", "page=-3", "state=bogus", "page=99999999999", "q=%00%ff"):
        response = httpx.get(f"{emu.url}/__dashboard/messages?{query}")
        assert response.status_code == 200, query


def test_redacted_bodies_and_headers_stay_hidden(emu: Emulator) -> None:
    published = httpx.post(
        f"{emu.url}/v2/publish/{emu.url}/__capture/secret",
        content=b"card 4242-4242",
        headers={
            "Authorization": f"Bearer {emu.token}",
            "Upstash-Forward-X-Api-Key": "s3cret-token",
            "Upstash-Redact-Fields": "body,header",
        },
    )
    message_id = published.json()["messageId"]
    emu.settle()
    page = httpx.get(f"{emu.url}/__dashboard/messages/{message_id}").text
    assert "4242-4242" not in page and "s3cret-token" not in page
    assert "Delivered" in page
    search = httpx.get(f"{emu.url}/__dashboard/messages?q=4242").text
    assert "data-message-id=" not in search


def test_callbacks_are_linked_to_their_message(emu: Emulator, client: QStash) -> None:
    res = client.message.publish(
        url=f"{emu.url}/__capture/main", body="x", callback=f"{emu.url}/__capture/cb"
    )
    emu.settle()
    page = httpx.get(f"{emu.url}/__dashboard/messages/{res.message_id}").text
    callback_id = page.split("<h2>Callbacks</h2>", 1)[1].split('href="/__dashboard/messages/')[1]
    callback_id = callback_id.split('"', 1)[0]
    callback = httpx.get(f"{emu.url}/__dashboard/messages/{callback_id}").text
    assert f'href="/__dashboard/messages/{res.message_id}"' in callback
    assert "callback of" in callback


def test_stopping_the_server_ends_open_event_streams() -> None:
    import threading

    emu = Emulator().start()
    ended = threading.Event()

    def listen() -> None:
        try:
            with httpx.stream("GET", f"{emu.url}/__dashboard/events", timeout=60) as stream:
                for _ in stream.iter_lines():
                    pass
        except httpx.HTTPError:
            pass
        ended.set()

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert emu.wait_until(lambda: bool(emu.engine.log_listeners))  # the app is up
    emu.stop()  # would wait for the open stream (aiohttp's shutdown timeout) if it did not end
    assert ended.wait(30)


def test_bulk_retry_retries_every_chosen_entry_or_none(emu: Emulator, client: QStash) -> None:
    url = f"{emu.url}/__capture/flaky"
    emu.faults.add(url, fail_times=3, status=500)
    for n in range(3):
        client.message.publish(url=url, body=f"n{n}", retries=0)
    emu.settle()
    ids = [m.dlq_id for m in client.dlq.list().messages]
    http, key = session(emu)
    refused = http.post(
        "/__dashboard/api/dlq/retry", json={"dlqIds": [ids[0], "missing"]}, headers={HEADER: key}
    )
    assert refused.status_code == 404
    assert len(client.dlq.list().messages) == 3  # nothing retried
    done = http.post("/__dashboard/api/dlq/retry", json={"dlqIds": ids[:2]}, headers={HEADER: key})
    assert done.status_code == 200 and len(done.json()["responses"]) == 2
    emu.settle()
    assert [m.dlq_id for m in client.dlq.list().messages] == ids[2:]
    assert len(emu.captures.requests("flaky")) == 2  # the two retries reached the destination


def test_the_readme_shows_the_screenshots_the_browser_tests_write() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    for name in ("messages", "message", "dlq", "schedules", "run"):
        assert f"docs/dashboard-{name}.png" in readme
        assert (root / "docs" / f"dashboard-{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_a_failed_message_page_offers_its_dlq_retry(emu: Emulator, client: QStash) -> None:
    url = f"{emu.url}/__capture/once"
    emu.faults.add(url, fail_times=1, status=500)
    failed = client.message.publish(url=url, body="x", retries=0)
    emu.settle()
    (entry,) = client.dlq.list().messages
    page = httpx.get(f"{emu.url}/__dashboard/messages/{failed.message_id}").text
    assert f'data-body=\'{{"dlqIds": ["{entry.dlq_id}"]}}\'' in page
    http, key = session(emu)
    done = http.post(
        "/__dashboard/api/dlq/retry", json={"dlqIds": [entry.dlq_id]}, headers={HEADER: key}
    )
    assert done.status_code == 200
    emu.settle()
    assert (
        'data-testid="retry"'
        not in httpx.get(f"{emu.url}/__dashboard/messages/{failed.message_id}").text
    )
