"""The delivery HTTP client against a raw socket server that records the bytes it receives and
answers with scripted bytes: framing, keep-alive, limits, timeouts and failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qstash_emulator.core.http_client import HttpClient, RequestFailed

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

# What the server does with one request: the bytes to answer ("" closes without answering) and
# whether to close the connection afterwards.
Script = Callable[[bytes, int], tuple[bytes, bool]]


@dataclass
class RawServer:
    """Reads whole requests (head and Content-Length body) and answers from `script`."""

    script: Script
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        served = 0
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                answer, close = self.script(request, served)
                served += 1
                if answer:
                    writer.write(answer)
                    await writer.drain()
                if close or not answer:
                    return
        finally:
            writer.close()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


Serve = Callable[[Script], Awaitable[RawServer]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start raw servers on free loopback ports; closed after the test."""
    servers: list[asyncio.Server] = []

    async def start(script: Script) -> RawServer:
        raw = RawServer(script)
        server = await asyncio.start_server(raw.handle, "127.0.0.1", 0)
        raw.port = server.sockets[0].getsockname()[1]
        servers.append(server)
        return raw

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def always(answer: bytes, close: bool = False) -> Script:
    return lambda _request, _n: (answer, close)


async def test_sends_headers_in_order_with_repeats_host_and_length(serve: Serve) -> None:
    raw = await serve(always(OK))
    client = HttpClient()
    headers = [("X-A", "1"), ("x-a", "2"), ("Content-Type", "text/plain")]
    answer = await client.request("POST", raw.url("/p?q=%2F"), headers, b"body", 5, 100)
    await client.close()
    assert (answer.status, answer.body, answer.headers) == (200, b"ok", [("Content-Length", "2")])
    assert raw.requests == [
        b"POST /p?q=%2F HTTP/1.1\r\n"
        + f"Host: 127.0.0.1:{raw.port}\r\n".encode()
        + b"X-A: 1\r\nx-a: 2\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nbody"
    ]


async def test_empty_bodies_announce_a_length_only_for_methods_with_a_body(serve: Serve) -> None:
    raw = await serve(always(OK))
    client = HttpClient()
    for method in ("GET", "DELETE", "POST", "PUT", "PATCH"):
        await client.request(method, raw.url(), [], b"", 5, 100)
    await client.close()
    has_length = [b"Content-Length: 0" in r for r in raw.requests]
    assert has_length == [False, False, True, True, True]


async def test_keeps_the_connection_alive_between_requests(serve: Serve) -> None:
    raw = await serve(always(OK))
    client = HttpClient()
    for _ in range(5):
        assert (await client.request("POST", raw.url(), [], b"x", 5, 100)).status == 200
    await client.close()
    assert (len(raw.requests), raw.connections) == (5, 1)


async def test_connection_close_is_honoured(serve: Serve) -> None:
    raw = await serve(
        always(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", close=True)
    )
    client = HttpClient()
    for _ in range(3):
        assert (await client.request("POST", raw.url(), [], b"x", 5, 100)).body == b"ok"
    await client.close()
    assert raw.connections == 3


async def test_chunked_and_read_until_close_bodies(serve: Serve) -> None:
    chunked = (
        b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    until_close = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it"
    raw = await serve(lambda _r, n: (chunked, False) if n == 0 else (until_close, True))
    client = HttpClient()
    first = await client.request("POST", raw.url(), [], b"x", 5, 100)
    second = await client.request("POST", raw.url(), [], b"x", 5, 100)
    await client.close()
    assert (first.status, first.body) == (202, b"abcde")
    assert (second.status, second.body) == (200, b"all of it")


async def test_body_is_cut_at_the_limit_and_the_connection_dropped(serve: Serve) -> None:
    raw = await serve(always(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"))
    client = HttpClient()
    first = await client.request("POST", raw.url(), [], b"x", 5, 4)
    second = await client.request("POST", raw.url(), [], b"x", 5, 100)
    await client.close()
    assert (first.body, second.body) == (b"0123", b"0123456789")
    assert raw.connections == 2


async def test_head_answers_have_no_body(serve: Serve) -> None:
    raw = await serve(always(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n"))
    client = HttpClient()
    answer = await client.request("HEAD", raw.url(), [], b"", 5, 100)
    await client.close()
    assert (answer.status, answer.body) == (200, b"")


async def test_a_reused_connection_the_server_dropped_is_replaced(serve: Serve) -> None:
    # The second request on a connection gets no answer at all: as when the server closed an
    # idle keep-alive connection just as it was reused. The client sends once more, afresh.
    raw = await serve(lambda _r, n: (OK, False) if n == 0 else (b"", True))
    client = HttpClient()
    first = await client.request("POST", raw.url(), [], b"1", 5, 100)
    second = await client.request("POST", raw.url(), [], b"2", 5, 100)
    await client.close()
    assert (first.body, second.body) == (b"ok", b"ok")
    assert raw.connections == 2 and [r[-1:] for r in raw.requests] == [b"1", b"2", b"2"]


async def test_no_answer_on_a_fresh_connection_fails(serve: Serve) -> None:
    raw = await serve(always(b""))
    client = HttpClient()
    with pytest.raises(RequestFailed, match="closed the connection"):
        await client.request("POST", raw.url(), [], b"x", 5, 100)
    await client.close()


async def test_a_connection_closed_midway_through_the_body_fails(serve: Serve) -> None:
    raw = await serve(always(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", close=True))
    client = HttpClient()
    with pytest.raises(RequestFailed, match="closed the connection"):
        await client.request("POST", raw.url(), [], b"x", 5, 100)
    await client.close()


async def test_an_invalid_answer_fails(serve: Serve) -> None:
    raw = await serve(always(b"NOT HTTP AT ALL\r\n\r\n"))
    client = HttpClient()
    with pytest.raises(RequestFailed, match="invalid HTTP response"):
        await client.request("POST", raw.url(), [], b"x", 5, 100)
    await client.close()


async def test_no_answer_in_time_raises_timeout_and_drops_the_connection(serve: Serve) -> None:
    never = asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await never.wait()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = HttpClient()
    with pytest.raises(asyncio.TimeoutError):
        await client.request("GET", f"http://127.0.0.1:{port}/", [], b"", 0.05, 100)
    await client.close()
    never.set()
    server.close()
    await server.wait_closed()


@pytest.mark.parametrize(
    ("name", "value"),
    [("X-Evil", "a\r\nInjected: yes"), ("X-Evil", "a\nb"), ("X-Evil", "a\rb"), ("X\r\nY", "v")],
)
async def test_line_breaks_in_headers_are_refused_before_sending(
    serve: Serve, name: str, value: str
) -> None:
    raw = await serve(always(OK))
    client = HttpClient()
    with pytest.raises(RequestFailed, match="line break"):
        await client.request("POST", raw.url(), [(name, value)], b"x", 5, 100)
    await client.close()
    assert raw.requests == []


async def test_non_ascii_paths_are_percent_encoded_and_credentials_become_basic_auth(
    serve: Serve,
) -> None:
    raw = await serve(always(OK))
    client = HttpClient()
    url = f"http://user:p%40ss@127.0.0.1:{raw.port}/caf\u00e9 x?q=\u00fc#frag"
    await client.request("GET", url, [], b"", 5, 100)
    await client.close()
    head = raw.requests[0].split(b"\r\n")
    assert head[0] == b"GET /caf%C3%A9%20x?q=%C3%BC HTTP/1.1"
    assert head[1] == f"Host: 127.0.0.1:{raw.port}".encode()
    assert head[2] == b"Authorization: Basic dXNlcjpwQHNz"  # user:p@ss


async def test_refused_connections_raise_oserror() -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = HttpClient()
    with pytest.raises(OSError):
        await client.request("POST", f"http://127.0.0.1:{port}/", [], b"x", 5, 100)
    await client.close()


@pytest.mark.parametrize(
    "url",
    ["ftp://127.0.0.1/x", "http:///nohost", "http://127.0.0.1:99999/", "http://a\u3002\u3002b/"],
)
async def test_unusable_urls_fail_clearly(url: str) -> None:
    client = HttpClient()
    with pytest.raises(RequestFailed):
        await client.request("POST", url, [], b"x", 5, 100)
    await client.close()


def test_the_client_works_on_uvloop_too() -> None:
    # The dev server runs on uvloop when it is installed (the [fast] extra, and the test extra).
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> tuple[int, bytes, int]:
        server_side: list[bytes] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            for _ in range(2):
                server_side.append(await reader.readuntil(b"\r\n\r\n") + await reader.read(1))
                writer.write(OK)
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = HttpClient()
        for _ in range(2):
            answer = await client.request("POST", f"http://127.0.0.1:{port}/", [], b"x", 5, 100)
        await client.close()
        server.close()
        await server.wait_closed()
        return answer.status, answer.body, len(server_side)

    loop = uvloop.new_event_loop()
    try:
        assert type(loop).__module__.startswith("uvloop")
        assert loop.run_until_complete(scenario()) == (200, b"ok", 2)
    finally:
        loop.close()


async def test_a_length_delimited_body_cut_short_by_a_close_fails_even_with_connection_close(
    serve: Serve,
) -> None:
    # Only a body without Content-Length (and not chunked) may end with the connection.
    cut = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 10\r\n\r\nabc"
    raw = await serve(always(cut, close=True))
    client = HttpClient()
    with pytest.raises(RequestFailed, match="closed the connection"):
        await client.request("POST", raw.url(), [], b"x", 5, 100)
    await client.close()


async def test_interim_1xx_answers_are_skipped_for_the_final_one(serve: Serve) -> None:
    early = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
    cont = b"HTTP/1.1 100 Continue\r\n\r\n"
    raw = await serve(always(early + cont + b"HTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nk"))
    client = HttpClient()
    answer = await client.request("POST", raw.url(), [], b"x", 5, 100)
    again = await client.request("POST", raw.url(), [], b"x", 5, 100)
    await client.close()
    assert (answer.status, answer.headers, answer.body) == (201, [("Content-Length", "1")], b"k")
    assert again.status == 201 and raw.connections == 1


async def test_a_second_answer_to_one_request_ends_the_connection(serve: Serve) -> None:
    twice = OK + b"HTTP/1.1 500 Oops\r\nX-Late: 1\r\nContent-Length: 0\r\n\r\n"
    raw = await serve(always(twice))
    client = HttpClient()
    first = await client.request("POST", raw.url(), [], b"x", 5, 100)
    second = await client.request("POST", raw.url(), [], b"x", 5, 100)
    await client.close()
    assert (first.status, first.headers) == (200, [("Content-Length", "2")])  # not the stray's
    assert second.status == 200 and raw.connections == 2


async def test_endless_answer_headers_are_refused(serve: Serve) -> None:
    big = b"X-Big: " + b"a" * 8000 + b"\r\n"
    raw = await serve(always(b"HTTP/1.1 200 OK\r\n" + big * 40 + b"Content-Length: 0\r\n\r\n"))
    client = HttpClient()
    with pytest.raises(RequestFailed, match="headers exceed 256 KB"):
        await client.request("POST", raw.url(), [], b"x", 5, 100)
    await client.close()


async def test_https_destinations_are_verified_against_the_trusted_authorities(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A local HTTPS destination whose authority is trusted through SSL_CERT_FILE (as mkcert's
    # would be) is reached; the same server is refused while its authority is not trusted.
    import ssl

    import trustme

    authority = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server_tls)
    raw = RawServer(always(OK))
    server = await asyncio.start_server(raw.handle, "127.0.0.1", 0, ssl=server_tls)
    port = server.sockets[0].getsockname()[1]
    url = f"https://localhost:{port}/secure"
    try:
        untrusting = HttpClient()
        with pytest.raises(ssl.SSLCertVerificationError):
            await untrusting.request("POST", url, [], b"x", 5, 100)
        await untrusting.close()

        ca_file = tmp_path / "ca.pem"
        authority.cert_pem.write_to_path(str(ca_file))
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
        trusting = HttpClient()
        answer = await trusting.request("POST", url, [], b"x", 5, 100)
        await trusting.close()
        assert (answer.status, answer.body) == (200, b"ok")
        assert raw.requests[-1].startswith(b"POST /secure HTTP/1.1\r\nHost: localhost:")
    finally:
        server.close()
        await server.wait_closed()


async def test_an_unasked_protocol_switch_is_the_answer_and_ends_the_connection(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    switch = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n"
    raw = await serve(always(switch + b"\x00\x01"))
    client = HttpClient()
    answer = await client.request("POST", raw.url(), [], b"x", 5, 100)
    await client.request("POST", raw.url(), [], b"x", 5, 100)
    await client.close()
    assert answer.status == 101 and raw.connections == 2
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []


# -- hostile answers ------------------------------------------------------------------------------

_PIECES = [
    b"HTTP/1.1 200 OK\r\n",
    b"HTTP/1.0 204 No Content\r\n",
    b"HTTP/1.1 103 Early Hints\r\n\r\n",
    b"HTTP/1.1 999 Weird\r\n",
    b"HTTP/2 200\r\n",
    b"Content-Length: 5\r\n",
    b"Content-Length: -1\r\n",
    b"Content-Length: 99999999999999999999\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Connection: close\r\n",
    b"Connection: upgrade\r\nUpgrade: h2c\r\n",
    b"X-A: b\r\n",
    b"Bad Header\r\n",
    b"\r\n",
    b"5\r\nhello\r\n0\r\n\r\n",
    b"zz\r\n",
    b"hello",
    b"\x00\xff",
]


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,  # the same answers every run
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    pieces=st.lists(st.sampled_from(_PIECES), max_size=8),
    noise=st.binary(max_size=40),
    close=st.booleans(),
)
async def test_any_answer_gives_a_response_or_a_clear_failure(
    serve: Serve, pieces: list[bytes], noise: bytes, close: bool
) -> None:
    # Whatever a destination sends, an attempt ends: an answer, a RequestFailed or a timeout;
    # never another exception, never a hang past the timeout.
    raw = await serve(always(b"".join(pieces) + noise or b"x", close=close))
    client = HttpClient()
    try:
        answer = await client.request("POST", raw.url(), [], b"x", 0.3, 1000)
    except (RequestFailed, asyncio.TimeoutError):
        pass
    else:
        assert isinstance(answer.status, int) and len(answer.body) <= 1000
    finally:
        await client.close()
