"""Messages never get stuck: a failure while sending settles the attempt, and headers that
cannot be sent are refused at publish and batch alike (issue 11, item 1)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from pytest_httpserver import HTTPServer
from qstash import QStash
from qstash_emulator import Emulator
from qstash_emulator.core.delivery import Outgoing
from qstash_emulator.core.state import Response
from werkzeug import Request
from werkzeug import Response as WResponse


def post_batch(emu: Emulator, entries: object) -> httpx.Response:
    # json.dumps escapes a lone surrogate (\ud800), as a client's JSON would carry it.
    return httpx.post(
        f"{emu.url}/v2/batch",
        content=json.dumps(entries).encode(),
        headers={"Authorization": f"Bearer {emu.token}", "Content-Type": "application/json"},
    )


def nothing_stored(emu: Emulator) -> bool:
    st = emu.engine.state(emu.user)
    return not st.messages and not list(st.logs) and not list(emu.engine.delivered)


@pytest.mark.parametrize(
    "headers",
    [
        {"Upstash-Forward-X-Bad": "a\x01b"},  # a control character in a value
        {"Upstash-Forward-X-Bad": "a\x00b"},
        {"X-Bad": "a\x7fb"},
        {"Upstash-Forward-X\rBad": "v"},  # CR, LF, NUL or a space in a name
        {"Upstash-Forward-X\nBad": "v"},
        {"Upstash-Forward-X\x00Bad": "v"},
        {"Upstash-Forward-X Bad": "v"},
        {"Upstash-Callback-Forward-Y": "\x1b[31m"},
        {"Upstash-Forward-X": "\ud800"},  # a lone surrogate cannot be encoded
    ],
)
def test_a_batch_entry_with_a_header_that_cannot_be_sent_is_a_400(
    emu: Emulator, target: Callable[..., str], headers: dict[str, str]
) -> None:
    entry = {"destination": target("/h"), "headers": headers, "body": "x"}
    if "Upstash-Callback-Forward-Y" in headers:
        entry["headers"] = {**headers, "Upstash-Callback": target("/cb")}
    res = post_batch(emu, [entry])
    assert res.status_code == 400, res.text
    assert "message 0" in res.json()["error"]
    assert nothing_stored(emu)


def test_batch_applies_publish_limits_on_header_count_and_size(
    emu: Emulator, target: Callable[..., str]
) -> None:
    many = {f"Upstash-Forward-X-{i}": "v" for i in range(10_000)}
    res = post_batch(emu, [{"destination": target("/h"), "headers": many}])
    assert res.status_code == 400
    assert "headers" in res.json()["error"]
    huge = {"Upstash-Forward-X": "v" * 10_000}
    res = post_batch(emu, [{"destination": target("/h"), "headers": huge}])
    assert res.status_code == 400
    assert nothing_stored(emu)
    # Within the limits, it goes through.
    ok = {f"Upstash-Forward-X-{i}": "v" * 100 for i in range(50)}
    assert post_batch(emu, [{"destination": target("/h"), "headers": ok}]).status_code == 200


def test_publish_refuses_the_same_headers_as_batch(
    emu: Emulator, target: Callable[..., str]
) -> None:
    # aiohttp's parser refuses control characters itself, but lets bytes that are not UTF-8
    # through (as surrogates), which the delivery could not encode.
    raw = (
        f"POST /v2/publish/{target('/h')} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {emu.token}\r\n"
    ).encode() + b"Upstash-Forward-X: a\xff\xfeb\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"
    with socket.create_connection(("127.0.0.1", emu.port)) as sock:
        sock.sendall(raw)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert nothing_stored(emu)


def test_any_failure_while_sending_is_a_failed_attempt_that_settles(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    url = target("/h")
    calls: list[str] = []

    async def broken(outgoing: Outgoing) -> Response | None:
        calls.append(outgoing.url)
        raise ValueError("something the emulator did not foresee")

    emu.delivery.interceptors.insert(0, broken)
    message_id = client.message.publish(url=url, body="x", retries=1).message_id
    emu.run_until_idle()

    assert len(calls) == 2  # the first attempt and its retry
    assert emu.engine.state(emu.user).messages == {}
    states = [log.state.value for log in client.log.list(filter={"message_id": message_id}).logs]
    assert states[0] == "FAILED"
    [entry] = client.dlq.list().messages
    assert entry.message_id == message_id
    errors = [e.error for e in emu.engine.state(emu.user).logs if e.error]
    assert any("ValueError" in (e or "") for e in errors)


# Run in a child process: a low file-descriptor limit must not touch the test runner.
_BURST = r"""
import asyncio, json, resource, subprocess, sys
from qstash_emulator import Emulator
from qstash_emulator.parsing.publish_headers import MessageSpec

TARGET = '''
import asyncio, sys
from aiohttp import web
seen = set()
async def hook(request):
    seen.add(await request.read())
    return web.Response(text="ok")
async def count(request):
    return web.Response(text=str(len(seen)))
async def main():
    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_get("/count", count)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
asyncio.run(main())
'''

limit, messages, concurrency = (int(a) if a != "-" else None for a in sys.argv[1:4])
# The destination is another process (as in real use), started before the limit is lowered.
target = subprocess.Popen([sys.executable, "-c", TARGET], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True)
port = int(target.stdout.readline())
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

async def main():
    async with Emulator(delivery_concurrency=concurrency) as emu:
        for i in range(messages):  # all due at the same instant, no retries
            emu.engine.publish_url(emu.user, f"http://127.0.0.1:{port}/hook",
                                   MessageSpec(retries=0, delay=10, timeout=60), str(i).encode(),
                                   caller_ip="127.0.0.1")
        await emu.aadvance(10)
        await emu.arun_until_idle()
        dlq = len(emu.engine.state(emu.user).dlq)
        await emu.delivery.close()
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/count") as answer:
        delivered = int(answer.read())
    print(json.dumps({"dlq": dlq, "delivered": delivered, "concurrency": emu.delivery.concurrency}))

try:
    asyncio.run(main())
finally:
    target.stdin.close()
    target.wait(10)
"""


def run_burst(tmp_path: Path, limit: int, messages: int, concurrency: int | None) -> dict[str, int]:
    script = tmp_path / "burst.py"
    script.write_text(_BURST)
    args = [str(limit), str(messages), str(concurrency) if concurrency else "-"]
    done = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_burst_under_a_low_fd_limit_waits_for_slots_instead_of_failing(tmp_path: Path) -> None:
    result = run_burst(tmp_path, 128, 400, None)
    assert result["concurrency"] == 32  # a quarter of the limit
    assert result == {"dlq": 0, "delivered": 400, "concurrency": 32}


def test_running_out_of_fds_is_not_the_destinations_failure(tmp_path: Path) -> None:
    # Slots set far above what the limit allows: sockets run out, and those attempts wait and
    # are sent again instead of failing (the destination never saw them).
    result = run_burst(tmp_path, 128, 300, 1000)
    assert result == {"dlq": 0, "delivered": 300, "concurrency": 1000}


def test_the_timeout_runs_from_when_the_request_is_sent(httpserver: HTTPServer) -> None:
    def slow(request: Request) -> WResponse:
        time.sleep(0.6)  # the destination's own time, under its 1 s timeout
        return WResponse("ok")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    url = httpserver.url_for("/slow")
    # One slot: the second message waits 0.6 s for it, then takes 0.6 s itself (1.2 s from due).
    with Emulator(delivery_concurrency=1) as emu:
        client = QStash(emu.token, base_url=emu.url, retry=False)
        for body in ("a", "b"):
            client.message.publish(url=url, body=body, timeout="1s", retries=0)
        emu.settle()
        answers = [d.response.status if d.response else None for d in emu.engine.delivered]
        assert answers == [200, 200]
        assert emu.engine.state(emu.user).dlq == {}
