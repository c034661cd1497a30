"""A lean HTTP/1.1 client for delivery attempts: keep-alive pools and llhttp's parser.

Why not aiohttp's client: an attempt is the emulator's hottest path, and aiohttp's client spends
about 95 µs of CPU per request on machinery deliveries never use (cookies, redirects, traces,
multidict headers, payload objects); this one spends about 30 µs (benchmarks/README.md). It
sends exactly the headers it is given, in order and with repeated names kept, plus `Host` and
`Content-Length` (as Go's client, which QStash runs on, does); it follows no redirect and
decodes no content encoding. The response is parsed by `httptools` (llhttp, Node's parser).
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast
from urllib.parse import quote, unquote, urlsplit

import httptools

__all__ = ["Answer", "HttpClient", "RequestFailed"]

# Idle keep-alive connections are closed after this many seconds (aiohttp's default too).
IDLE_TIMEOUT = 15.0
# Methods whose empty body is still announced with `Content-Length: 0` (as Go's client does).
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Printable ASCII that may stay as it is in a request target; anything else is percent-encoded.
_TARGET_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))
_MAX_TARGETS = 4096  # parsed URLs kept (messages to one URL share one)
_MAX_HEAD = 256 * 1024  # bytes of an answer's header names and values, at most


class RequestFailed(Exception):
    """The request could not be sent or its answer not read (connection, protocol, URL)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A destination's answer: status, headers in order (repeats kept) and the body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True, slots=True)
class _Target:
    """A URL taken apart once: where to connect and what the request line and `Host` say."""

    key: tuple[str, str, int]  # (scheme, host, port): the pool
    host: str
    port: int
    tls: bool
    head: str  # " {target} HTTP/1.1\r\nHost: {host}\r\n" (plus credentials from the URL)
    breaks: int  # line breaks in `head`


def _target(url: str) -> _Target:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise RequestFailed(f"unsupported URL scheme {parts.scheme!r}")
    host = parts.hostname
    if not host:
        raise RequestFailed(f"no host in {url!r}")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise RequestFailed(str(exc)) from None
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise RequestFailed(f"invalid host name {host!r}: {exc}") from None
    netloc = parts.netloc.rpartition("@")[2]
    if not netloc.isascii():
        netloc = host if parts.port is None else f"{host}:{parts.port}"
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    if not all(" " < c < "\x7f" for c in target):
        target = quote(target, safe=_TARGET_SAFE)
    head = f" {target} HTTP/1.1\r\nHost: {netloc}\r\n"
    if parts.username is not None:  # credentials in the URL become Basic auth, as in Go
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        head += f"Authorization: Basic {base64.b64encode(pair.encode()).decode()}\r\n"
    return _Target((scheme, host, port), host, port, scheme == "https", head, head.count("\n"))


class _Connection(asyncio.Protocol):
    """One keep-alive connection: sends a request, parses its answer, then waits idle."""

    def __init__(self, pool: list[_Connection]) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Answer] | None = None
        self.stray = False  # an answer nobody asked for arrived: never reuse the connection
        self.idle_since = 0.0
        self._begin(0, False)

    def _begin(self, limit: int, head: bool) -> None:
        """Start over for one request's answer: its body kept up to `limit` bytes."""
        self.headers: list[tuple[str, str]] = []
        self.body: list[bytes] = []
        self.size = 0
        self.limit = limit
        self.head_only = head  # a HEAD request: the answer has no body whatever it says
        self.head_size = 0
        self.headers_done = False
        self.interim = False  # a 1xx answer (100 Continue, 103 Early Hints): the real one follows
        self.got_data = False  # any byte of the answer arrived (a stale reuse gets none)
        self.keep_alive = False

    # -- asyncio.Protocol -----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's are not asyncio.Transport subclasses, hence no check).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():
            self._close()  # nothing was asked: an answer out of turn ends the connection
            return
        self.got_data = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(RequestFailed(f"invalid HTTP response: {exc}"))
        except httptools.HttpParserUpgrade:
            # A 101 nobody asked for (no Upgrade is ever sent): the answer stands, the
            # connection is the server's now.
            self._fail(RequestFailed("the server switched protocols unasked"))

    def eof_received(self) -> bool | None:
        return None  # close the transport (connection_lost follows)

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self.pool:
            self.pool.remove(self)
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if self.headers_done and self._ends_at_close():
            # A body read until the connection closes (no length, not chunked) ends here.
            self._complete()
            return
        if not self.got_data:
            waiter.set_exception(_Stale(exc))
        else:
            reason = f": {exc}" if exc else ""
            waiter.set_exception(RequestFailed(f"the server closed the connection{reason}"))

    # -- httptools callbacks --------------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.waiter is None or self.waiter.done():
            self.stray = True  # a second answer to one request: ignored, the connection dropped

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.stray:
            return
        self.head_size += len(name) + len(value)
        if self.head_size > _MAX_HEAD:
            self._fail(RequestFailed(f"the answer's headers exceed {_MAX_HEAD // 1024} KB"))
            return
        self.headers.append((name.decode("latin-1"), value.decode("utf-8", "replace")))

    def on_headers_complete(self) -> None:
        if self.stray:
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self.interim = True
            return
        self.headers_done = True
        self.keep_alive = self.parser.should_keep_alive()
        if self.head_only:
            self.keep_alive = False  # llhttp would wait for the announced body: not reusable
            self._complete()

    def on_body(self, chunk: bytes) -> None:
        if self.stray:
            return
        room = self.limit - self.size
        if room <= 0:
            return
        if len(chunk) > room:
            chunk = chunk[:room]
        self.body.append(chunk)
        self.size += len(chunk)
        if self.size >= self.limit:
            # Kept up to the limit; the rest is not read (the connection is not reused).
            self.keep_alive = False
            self._complete()

    def on_message_complete(self) -> None:
        if self.stray:
            return
        if self.interim:  # what came was a 1xx: start over for the final answer
            self.interim = False
            self.headers = []
            self.head_size = 0
            return
        self._complete()

    # -- the request --------------------------------------------------------------------------
    def _ends_at_close(self) -> bool:
        """The answer's body has no length and is not chunked: the close is its end."""
        status = self.parser.get_status_code()
        if status < 200 or status in (204, 304):
            return False  # no body at all
        framed = {name.lower() for name, _ in self.headers}
        return "content-length" not in framed and "transfer-encoding" not in framed

    def _complete(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            status = self.parser.get_status_code()
            waiter.set_result(Answer(status, self.headers, b"".join(self.body)))
            self.headers, self.body = [], []  # the answer keeps its own

    def _fail(self, exc: BaseException) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self._close()

    def _close(self) -> None:
        self.keep_alive = False
        if self.transport is not None:
            self.transport.abort()

    def expire(self, seconds: float) -> None:
        """The attempt's time is up: fail it and drop the connection."""
        self._fail(asyncio.TimeoutError(f"no answer within {seconds:g}s"))

    def send(self, data: bytes, waiter: asyncio.Future[Answer], limit: int, head: bool) -> None:
        """Write one request; `waiter` gets its answer."""
        assert self.transport is not None
        self.waiter = waiter
        self._begin(limit, head)
        self.transport.write(data)


class _Stale(Exception):
    """A reused connection closed before any byte of the answer: the server had let it go."""

    def __init__(self, exc: Exception | None) -> None:
        super().__init__(f"the server closed the connection{f': {exc}' if exc else ''}")


class HttpClient:
    """Pooled keep-alive HTTP/1.1 connections, one pool per (scheme, host, port).

    Must be used from one event loop; `close` before the loop ends. The pools are not bounded:
    the caller bounds how many requests are in flight (the idle connections are at most that).
    """

    def __init__(self) -> None:
        self._pools: dict[tuple[str, str, int], list[_Connection]] = {}
        self._targets: dict[str, _Target] = {}
        self._busy: set[_Connection] = set()
        self._tls: ssl.SSLContext | None = None

    async def request(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        timeout: float,
        max_body: int,
    ) -> Answer:
        """Send one request and return the answer, its body cut at `max_body` bytes.

        Raises:
            asyncio.TimeoutError: No whole answer within `timeout` seconds of the call.
            RequestFailed: The URL is unusable, or the answer is not valid HTTP, or the
                connection closed before it was complete.
            OSError: The connection could not be made (refused, unreachable, out of files).
        """
        target = self._targets.get(url)
        if target is None:
            target = _target(url)
            if len(self._targets) >= _MAX_TARGETS:
                self._targets.clear()
            self._targets[url] = target
        lines = "".join([f"{name}: {value}\r\n" for name, value in headers])
        breaks = target.breaks + len(headers) + 1
        if body or method in _BODY_METHODS:
            lines += f"Content-Length: {len(body)}\r\n"
            breaks += 1
        text = method + target.head + lines + "\r\n"
        # A name or value with a line break would smuggle a header (or a request) in.
        if text.count("\n") != breaks or text.count("\r") != breaks:
            raise RequestFailed("a header name or value holds a line break")
        try:
            data = text.encode("utf-8") + body
        except UnicodeEncodeError as exc:
            raise RequestFailed(f"a header cannot be encoded: {exc}") from None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        head_only = method == "HEAD"
        for fresh in (False, True):
            conn = await self._acquire(target, loop, deadline, timeout, fresh)
            waiter: asyncio.Future[Answer] = loop.create_future()
            expiry = loop.call_at(deadline, conn.expire, timeout)
            self._busy.add(conn)
            try:
                conn.send(data, waiter, max_body, head_only)
                answer = await waiter
            except _Stale as exc:
                if fresh:
                    raise RequestFailed(str(exc)) from None
                continue  # the server had closed it while idle: once more on a new connection
            except BaseException:
                conn._close()  # cancelled or failed midway: the connection's state is unknown
                raise
            finally:
                expiry.cancel()
                self._busy.discard(conn)
                conn.waiter = None
            transport = conn.transport
            if conn.keep_alive and not conn.stray and transport and not transport.is_closing():
                conn.idle_since = loop.time()
                conn.pool.append(conn)
                self._trim(conn.pool, conn.idle_since)
            else:
                conn._close()
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    async def _acquire(
        self,
        target: _Target,
        loop: asyncio.AbstractEventLoop,
        deadline: float,
        timeout: float,
        fresh: bool,
    ) -> _Connection:
        pool = self._pools.get(target.key)
        if pool is None:
            pool = self._pools[target.key] = []
        if not fresh:
            while pool:
                conn = pool.pop()
                transport = conn.transport
                if (
                    transport is not None
                    and not transport.is_closing()
                    and loop.time() - conn.idle_since < IDLE_TIMEOUT
                ):
                    return conn
                conn._close()
        tls: ssl.SSLContext | None = None
        if target.tls:
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        connect = loop.create_connection(
            lambda: _Connection(pool),
            target.host,
            target.port,
            ssl=tls,
            server_hostname=target.host if tls else None,
        )
        try:
            _transport, conn = await asyncio.wait_for(connect, max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            raise asyncio.TimeoutError(f"no connection within {timeout:g}s") from None
        return conn

    @staticmethod
    def _trim(pool: list[_Connection], now: float) -> None:
        # The oldest idle connection first: at most one closed per release keeps this O(1).
        if pool and now - pool[0].idle_since >= IDLE_TIMEOUT:
            pool.pop(0)._close()

    async def close(self) -> None:
        """Close every connection, idle or busy."""
        for pool in self._pools.values():
            for conn in list(pool):
                conn._close()
            pool.clear()
        for conn in list(self._busy):
            conn._close()
        self._pools.clear()
        self._targets.clear()
        # Let the transports' close callbacks run before the loop may end.
        await asyncio.sleep(0)
