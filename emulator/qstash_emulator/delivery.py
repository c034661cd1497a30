"""Real HTTP deliveries with one pooled aiohttp client session."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp

from . import headers as h
from .state import Response

# A destination's answer is kept (logs, DLQ, callbacks) up to this size.
MAX_RESPONSE_BODY = 1_000_000

# An interceptor may answer a delivery itself (injected faults, built-in capture URLs, the LLM
# engine for provider hosts); returning None lets the request go out over the network.
Interceptor = Callable[[str, str, list[tuple[str, str]], bytes], Awaitable[Response | None]]


class Delivery:
    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self.interceptors: list[Interceptor] = []

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
        for intercept in self.interceptors:
            answer = await intercept(method, url, headers, body)
            if answer is not None:
                return answer
        session = await self._client()
        try:
            async with session.request(
                method,
                url,
                headers=headers,
                data=body,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
            ) as resp:
                data = await resp.content.read(MAX_RESPONSE_BODY)
                return Response(resp.status, h.from_pairs(resp.headers.items()), data)
        except asyncio.TimeoutError:
            return Response(None, {}, b"", error=f"request timed out after {timeout:g}s")
        except aiohttp.ClientError as exc:
            return Response(None, {}, b"", error=f"request failed: {exc}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
