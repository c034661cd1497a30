"""Bad input gets a clear 4xx, never a 500 (issue 11, items 7-9)."""

from __future__ import annotations

import base64
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from qstash_emulator import Emulator
from test_cli import free_port, start

DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 100_000 + b"1" + b"}" * 100_000


def send(emu: Emulator, method: str, path: str, body: bytes) -> httpx.Response:
    return httpx.request(
        method,
        emu.url + path,
        content=body,
        headers={"Authorization": f"Bearer {emu.token}", "Content-Type": "application/json"},
    )


JSON_ROUTES = [
    ("POST", "/v2/batch"),
    ("POST", "/v2/queues"),
    ("POST", "/v2/topics/team/endpoints"),
    ("DELETE", "/v2/topics/team/endpoints"),
    ("POST", "/v2/dlq/retry"),
    ("DELETE", "/v2/dlq"),
    ("DELETE", "/v2/messages"),
    ("PUT", "/__captures/x"),
]
LLM_ROUTES = [
    ("POST", "/llm/v1/chat/completions"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/v2/embeddings"),
    ("POST", "/queue/chat/completions"),
]


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["array", "object"])
@pytest.mark.parametrize(("method", "path"), JSON_ROUTES)
def test_json_nested_too_deep_is_a_400(emu: Emulator, method: str, path: str, body: bytes) -> None:
    res = send(emu, method, path, body)
    assert res.status_code == 400, res.text[:300]
    assert isinstance(res.json()["error"], str)


@pytest.mark.parametrize(("method", "path"), LLM_ROUTES)
def test_json_nested_too_deep_is_openais_400_on_llm_routes(
    emu: Emulator, method: str, path: str
) -> None:
    res = send(emu, method, path, DEEP_OBJECT)
    assert res.status_code == 400, res.text[:300]
    error = res.json()["error"]
    assert isinstance(error, dict) and error["message"]


def test_moderately_deep_json_that_parses_is_still_a_clean_answer(emu: Emulator) -> None:
    # Deep enough to parse, too deep for anything that walks it recursively later.
    body = (
        b'[{"destination": "http://127.0.0.1:1/x", "body": "x", "headers": '
        + (b'{"a":' * 900 + b"1" + b"}" * 900)
        + b"}]"
    )
    res = send(emu, "POST", "/v2/batch", body)
    assert res.status_code == 400
    chat = (
        b'{"model": "x", "messages": [{"role": "user", "content": '
        + b"[" * 900
        + b"]" * 900
        + b"}]}"
    )
    res = send(emu, "POST", "/llm/v1/chat/completions", chat)
    assert 400 <= res.status_code < 500


def test_a_lone_surrogate_in_a_batch_body_is_a_400(
    emu: Emulator, target: Callable[..., str]
) -> None:
    body = b'[{"destination": "' + target("/s").encode() + b'", "body": "a\\ud800b"}]'
    res = send(emu, "POST", "/v2/batch", body)
    assert res.status_code == 400
    assert "message 0" in res.json()["error"]
    assert not emu.engine.state(emu.user).messages


@pytest.mark.parametrize(
    "destination", ["http://127.0.0.1:1/\\ud800", "\\ud800"], ids=["in-url", "alone"]
)
def test_a_lone_surrogate_in_a_batch_destination_is_a_400(emu: Emulator, destination: str) -> None:
    body = b'[{"destination": "' + destination.encode() + b'", "body": "x"}]'
    res = send(emu, "POST", "/v2/batch", body)
    assert res.status_code == 400, res.text
    assert not emu.engine.state(emu.user).messages


@pytest.mark.parametrize("path", ["/v2/logs", "/v2/dlq", "/v2/events"])
def test_a_cursor_that_is_base64_of_a_string_is_a_400(emu: Emulator, path: str) -> None:
    httpx.post(
        f"{emu.url}/v2/publish/{emu.url}/__capture/x",
        headers={"Authorization": f"Bearer {emu.token}"},
    )
    cursor = base64.b64encode(b'"x"').decode()
    res = httpx.get(
        f"{emu.url}{path}?cursor={cursor}", headers={"Authorization": f"Bearer {emu.token}"}
    )
    assert res.status_code == 400
    assert "cursor" in res.json()["error"]


# -- item 8: what aiohttp's own parser refuses is one line, not a traceback ----------------------


def test_a_request_the_http_parser_refuses_prints_one_line(tmp_path: Path) -> None:
    port = free_port()
    proc, _banner = start(f"--port={port}")
    try:
        for raw in (
            b"GET /v2/logs HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
            b"POST /v2/publish/x HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n",
        ):
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(raw)
                assert sock.recv(100).startswith(b"HTTP/1.0 400")
        # A good request after them: the server is still serving.
        assert httpx.get(f"http://127.0.0.1:{port}/v2/logs").status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=10)
    assert "Traceback" not in output
    refused = [line for line in output.splitlines() if "refused" in line]
    assert len(refused) == 2, output
    assert all("127.0.0.1" in line and "400" in line for line in refused)


# -- item 9: destinations that cannot be URLs; the port in use; full-width digits -------------


@pytest.mark.parametrize(
    "destination",
    [
        "http://127.0.0.1:99999/x",
        "http://a b.example.com/x",
        "http://127.0.0.1:\uff10\uff18\uff10/x",
    ],
    ids=["port-99999", "space-in-host", "full-width-port"],
)
def test_a_destination_that_cannot_be_a_url_is_a_400_at_publish(
    emu: Emulator, destination: str
) -> None:
    auth = {"Authorization": f"Bearer {emu.token}"}
    path = quote(destination, safe=":/")
    res = httpx.post(f"{emu.url}/v2/publish/{path}", headers=auth, content=b"x")
    assert res.status_code == 400, res.text
    assert "url" in res.json()["error"]
    batch = [{"destination": destination, "body": "x"}]
    assert httpx.post(f"{emu.url}/v2/batch", headers=auth, json=batch).status_code == 400
    callback = {**auth, "Upstash-Callback": destination.encode()}
    res = httpx.post(f"{emu.url}/v2/publish/{emu.url}/__capture/x", headers=callback)
    assert res.status_code == 400
    assert not emu.engine.state(emu.user).messages
    assert not list(emu.engine.state(emu.user).logs)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Upstash-Retries", "\uff13"),
        ("Upstash-Flow-Control-Value", "parallelism=\uff12"),
        ("Upstash-Delay", "\uff11\uff10s"),
        ("Upstash-Not-Before", "\uff11\uff17\uff10\uff10\uff10\uff10\uff10\uff10\uff10\uff10"),
    ],
)
def test_a_full_width_digit_is_not_a_number(emu: Emulator, header: str, value: str) -> None:
    headers = {
        "Authorization": f"Bearer {emu.token}",
        header: value,
        "Upstash-Flow-Control-Key": "k",
    }
    if header != "Upstash-Flow-Control-Value":
        headers["Upstash-Flow-Control-Value"] = "parallelism=1"
    res = httpx.post(
        f"{emu.url}/v2/publish/{emu.url}/__capture/x",
        headers={k: v.encode() for k, v in headers.items()},  # type: ignore[misc]
    )
    assert res.status_code == 400, res.text


def test_a_full_width_count_is_a_400(emu: Emulator) -> None:
    res = httpx.get(
        f"{emu.url}/v2/logs?count=\uff15", headers={"Authorization": f"Bearer {emu.token}"}
    )
    assert res.status_code == 400


def test_dev_on_a_port_in_use_says_so_in_one_line_and_exits_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "qstash_emulator", "dev", "--in-memory", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert str(port) in lines[0] and "--port" in lines[0]


def test_dev_refuses_a_full_width_port() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "qstash_emulator",
            "dev",
            "--in-memory",
            "--port",
            "\uff18\uff10\uff18\uff10",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--port" in done.stderr and "Traceback" not in done.stderr


def test_a_message_with_a_deeply_nested_body_still_shows_on_the_dashboard(emu: Emulator) -> None:
    # Any body is accepted at publish (QStash does not parse it); showing it must not fail.
    res = send(emu, "POST", f"/v2/publish/{emu.url}/__capture/deep", DEEP)
    message_id = res.json()["messageId"]
    page = httpx.get(f"{emu.url}/__dashboard/messages/{message_id}")
    assert page.status_code == 200
    assert message_id in page.text
