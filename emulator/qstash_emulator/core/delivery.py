"""Real HTTP deliveries: interceptors, then the pooled HTTP client, at bounded concurrency."""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..parsing import header_names as h
from .http_client import HttpClient, RequestFailed
from .state import Response

__all__ = ["Delivery", "Interceptor", "Outgoing", "default_concurrency", "own_error"]

log = logging.getLogger("qstash_emulator")

# A destination's answer is kept (logs, DLQ, callbacks) up to this size.
_MAX_RESPONSE_BODY = 1_000_000
# The emulator's own resources ran out (not the destination's fault): wait and send again, up
# to this many wall seconds in all, before the attempt counts as failed.
OWN_ERROR_PATIENCE = 120.0
_OWN_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def default_concurrency() -> int:
    """Deliveries in flight at once: a quarter of the file-descriptor limit, 8 to 1,000.

    Each delivery holds a socket, and the server's own connections need some too.
    """
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1000
    return max(8, min(1000, soft // 4))


def own_error(exc: BaseException) -> bool:
    """True when the failure is the emulator's (out of file descriptors or memory)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _OWN_ERRNOS:
            return True
        current = current.__cause__ or current.__context__
    return False


@dataclass
class Outgoing:
    """One delivery attempt about to leave: what interceptors see."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes
    timeout: float


# An interceptor may answer a delivery itself (injected faults, the LLM engine for provider
# hosts); returning None lets the request go out over the network.
Interceptor = Callable[[Outgoing], Awaitable[Response | None]]


class Delivery:
    """Sends delivery attempts over real HTTP with one pooled client (`HttpClient`).

    Lives on the emulator's event loop (the client is created there on first use); call
    `close` before the loop ends. `interceptors` may answer an attempt first (faults, the LLM
    gateway), and `rewrites` map published URL prefixes to local ones. At most `concurrency`
    attempts are on the network at once: the rest wait for a slot, and an attempt's timeout
    starts only when its request is sent.
    """

    def __init__(self, concurrency: int | None = None) -> None:
        self.concurrency = concurrency or default_concurrency()
        self._slots: asyncio.Semaphore | None = None
        self._client: HttpClient | None = None
        self.interceptors: list[Interceptor] = []
        # (published prefix, local prefix): apps build absolute production URLs; deliver locally.
        self.rewrites: list[tuple[str, str]] = []

    async def send(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes,
        timeout: float,
    ) -> Response:
        """Make one attempt and return the destination's answer; never raises for network failures.

        Args:
            method: The HTTP method.
            url: The destination URL (before rewrites).
            headers: The headers to send, in order.
            body: The body to send.
            timeout: Seconds the whole request may take.

        Returns:
            The answer (body cut at 1 MB), or a `Response` with status None and an `error` for a
            timeout or connection failure.
        """
        if self.interceptors:
            outgoing = Outgoing(method, url, headers, body, timeout)
            for intercept in self.interceptors:
                answer = await intercept(outgoing)
                if answer is not None:
                    return answer
        for prefix, local in self.rewrites:
            rest = url[len(prefix) :]
            if url.startswith(prefix) and (not rest or rest[0] in "/?#"):
                url = local + rest
                break
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + OWN_ERROR_PATIENCE
        pause = 0.01
        while True:
            async with self._slots:
                try:
                    return await self._request(method, url, headers, body, timeout)
                except OSError as exc:
                    if not own_error(exc) or loop.time() >= give_up:
                        return Response(None, {}, b"", error=f"request failed: {exc}")
                    error = exc
            # Out of file descriptors (or memory) here, not at the destination: not an attempt.
            log.warning("delivery to %s waits: the emulator is short of resources (%s)", url, error)
            await asyncio.sleep(pause)
            pause = min(1.0, pause * 2)

    async def _request(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes, timeout: float
    ) -> Response:
        if self._client is None:
            # No pool limit: the slots bound concurrency (a wait in the pool would count against
            # the attempt's timeout).
            self._client = HttpClient()
        try:
            answer = await self._client.request(
                method, url, headers, body, timeout, _MAX_RESPONSE_BODY
            )
        except asyncio.TimeoutError:
            return Response(None, {}, b"", error=f"request timed out after {timeout:g}s")
        except RequestFailed as exc:
            return Response(None, {}, b"", error=f"request failed: {exc}")
        return Response(answer.status, h.from_pairs(answer.headers), answer.body)

    def rewrite(self, published: str, local: str) -> None:
        """Deliver what is published to `published...` to `local...`.

        The signature keeps the published URL as its subject, as QStash would sign it.
        """
        self.rewrites.append((published.rstrip("/"), local.rstrip("/")))

    async def close(self) -> None:
        """Close the HTTP client's connections (on the loop that created it)."""
        if self._client is not None:
            await self._client.close()
            self._client = None
        self._slots = None  # bound to this loop once used; a restart gets a new one
