"""Real HTTP deliveries with one pooled aiohttp client session."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from ..parsing import header_names as h
from .state import Response

__all__ = ["Delivery", "Interceptor", "Outgoing"]

# A destination's answer is kept (logs, DLQ, callbacks) up to this size.
_MAX_RESPONSE_BODY = 1_000_000


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
    """Sends delivery attempts over real HTTP with one pooled aiohttp session.

    Lives on the emulator's event loop (the session is created there on first use); call
    `close` before the loop ends. `interceptors` may answer an attempt first (faults, the LLM
    gateway), and `rewrites` map published URL prefixes to local ones.
    """

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self.interceptors: list[Interceptor] = []
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        # (published prefix, local prefix): apps build absolute production URLs; deliver locally.
        self.rewrites: list[tuple[str, str]] = []

    async def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            # No pool limit: queue parallelism and flow control bound concurrency, not the pool.
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",)
            )
        return self._session

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
        session = await self._client()
        try:
            async with session.request(
                method,
                url,
                headers=headers,
                data=body,
                timeout=self._timeout(timeout),
                allow_redirects=False,
            ) as resp:
                data = await resp.content.read(_MAX_RESPONSE_BODY)
                return Response(resp.status, h.from_pairs(resp.headers.items()), data)
        except asyncio.TimeoutError:
            return Response(None, {}, b"", error=f"request timed out after {timeout:g}s")
        except aiohttp.ClientError as exc:
            return Response(None, {}, b"", error=f"request failed: {exc}")

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        # Messages share a handful of timeouts; reuse the objects instead of one per request.
        found = self._timeouts.get(seconds)
        if found is None:
            found = self._timeouts[seconds] = aiohttp.ClientTimeout(total=seconds)
        return found

    def rewrite(self, published: str, local: str) -> None:
        """Deliver what is published to `published...` to `local...`.

        The signature keeps the published URL as its subject, as QStash would sign it.
        """
        self.rewrites.append((published.rstrip("/"), local.rstrip("/")))

    async def close(self) -> None:
        """Close the HTTP session (on the loop that created it)."""
        if self._session is not None:
            await self._session.close()
            self._session = None
