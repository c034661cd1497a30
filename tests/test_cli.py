"""The standalone server: `qstash-emulator dev` as a drop-in for `qstash dev`."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading

import pytest
from helpers import requests_to
from pytest_httpserver import HTTPServer
from qstash import QStash
from qstash_emulator.cli import _normalize, parser
from werkzeug import Request, Response


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(*args: str) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "qstash_emulator", "dev", "--in-memory", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:  # the banner ends with the fourth user's next signing key
        lines.append(line.rstrip("\n"))
        if sum(x.startswith("QSTASH_NEXT_SIGNING_KEY") for x in lines) == 4:
            break
    return proc, lines


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_dev_server_prints_users_serves_and_stops_cleanly(
    httpserver: HTTPServer, sig: signal.Signals
) -> None:
    arrived = threading.Event()

    def handler(request: Request) -> Response:
        arrived.set()
        return Response("ok")

    httpserver.expect_request("/cli").respond_with_handler(handler)
    port = free_port()
    proc, banner = start(f"-port={port}")
    try:
        text = "\n".join(banner)
        assert f"http://127.0.0.1:{port}" in text
        assert 'QSTASH_CURRENT_SIGNING_KEY="sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r"' in text
        assert text.count("QSTASH_TOKEN=") == 4
        token = banner[next(i for i, line in enumerate(banner) if line.startswith("QSTASH_TOKEN"))]
        client = QStash(token.split("=", 1)[1].strip('"'), base_url=f"http://127.0.0.1:{port}")
        client.message.publish(url=httpserver.url_for("/cli"), body="hello")
        assert arrived.wait(10)  # real time here: the standalone server runs on the wall clock
        assert [r.get_data() for r in requests_to(httpserver, "/cli")] == [b"hello"]
    finally:
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0


def test_flag_spellings() -> None:
    args = parser().parse_args(
        _normalize(["dev", "-port=9000", "-quota", "pro", "--host", "127.0.0.1"])
    )
    assert (args.port, args.quota, args.host) == (9000, "pro", "127.0.0.1")


def test_the_server_loop_is_uvloop_when_installed_unless_asyncio_is_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    from qstash_emulator.cli import run

    seen: list[str] = []

    async def which() -> None:
        seen.append(type(asyncio.get_running_loop()).__module__)

    monkeypatch.setenv("QSTASH_EMULATOR_LOOP", "asyncio")
    run(which())
    assert seen[-1].startswith("asyncio")
    monkeypatch.delenv("QSTASH_EMULATOR_LOOP")
    run(which())
    try:
        import uvloop  # noqa: F401
    except ImportError:
        assert seen[-1].startswith("asyncio")
    else:
        assert seen[-1].startswith("uvloop")


def test_finished_retention_option(httpserver: HTTPServer) -> None:
    arrived = threading.Event()

    def handler(request: Request) -> Response:
        arrived.set()
        return Response("ok")

    httpserver.expect_request("/kept").respond_with_handler(handler)
    port = free_port()
    proc, banner = start(f"-port={port}", "--finished-retention", "0")
    try:
        token = next(line for line in banner if line.startswith("QSTASH_TOKEN"))
        client = QStash(token.split("=", 1)[1].strip('"'), base_url=f"http://127.0.0.1:{port}")
        res = client.message.publish(url=httpserver.url_for("/kept"), body="x")
        assert arrived.wait(10)
        for _ in range(500):  # the DELIVERED log follows the answer at once; bounded anyway
            logs = client.log.list(filter={"message_id": res.message_id}).logs
            if any(log.state.value == "DELIVERED" for log in logs):
                break
        else:
            pytest.fail("the message was not logged DELIVERED")
        with pytest.raises(Exception, match="404"):
            client.message.get(res.message_id)  # kept for no time at all
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "qstash_emulator",
            "dev",
            "--in-memory",
            "--finished-retention",
            "soon",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode != 0 and "--finished-retention" in bad.stderr
