"""Live updates: one change counter per server, and a server-sent event stream per open page.

The counter moves on every log entry the engine writes (publish, attempt, retry, DLQ, cancel)
and after every request that may change state (any non-GET request: the REST API's and the
dashboard's own actions). A page's stream sends `change` with the counter and the emulator's
clock whenever either moved (bursts are coalesced), and `clock` once a second otherwise; the
page then re-fetches its content.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping

from aiohttp import web

from ..core.clock import ms
from . import access
from .security import require_local

__all__ = ["NOTIFIER", "Notifier", "events", "setup"]

# Bursts (a batch of 1,000 publishes) become one event per page in this interval.
COALESCE = 0.05
TICK = 1.0  # seconds between clock events while nothing changes
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Notifier:
    """A change counter that open event streams wait on."""

    def __init__(self) -> None:
        self.version = 0
        self.closed = False
        self._waiters: set[asyncio.Future[None]] = set()

    def bump(self, *_: object) -> None:
        """Count a change and wake every waiting stream."""
        self.version += 1
        if self._waiters:
            for waiter in self._waiters:
                if not waiter.done():
                    waiter.set_result(None)
            self._waiters.clear()

    async def wait(self, seen: int, timeout: float) -> None:
        """Return when the version differs from `seen`, or after `timeout` seconds."""
        if self.version != seen or self.closed:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            await asyncio.wait({waiter}, timeout=timeout)
        finally:
            self._waiters.discard(waiter)

    def close(self) -> None:
        """Server shutdown: end every stream now (open streams would hold the shutdown)."""
        self.closed = True
        self.bump()


NOTIFIER = web.AppKey("dashboard_notifier", Notifier)


def _event(name: str, data: Mapping[str, object]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def events(request: web.Request) -> web.StreamResponse:
    """GET /__dashboard/events: the page's server-sent event stream."""
    require_local(request)
    notifier = request.app[NOTIFIER]
    clock = access.engine(request).clock
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    seen, last_now = -1, None
    with contextlib.suppress(ConnectionError, asyncio.CancelledError):
        while not notifier.closed:
            now = clock.now()
            if notifier.version != seen or (clock.virtual and now != last_now):
                seen, last_now = notifier.version, now
                data = {"version": seen, "now": ms(now), "virtual": clock.virtual}
                await response.write(_event("change", data))
                await asyncio.sleep(COALESCE)
                continue
            await notifier.wait(seen, TICK)
            if notifier.version == seen and not notifier.closed:
                await response.write(_event("clock", {"now": ms(clock.now())}))
    return response


async def _bump_after_changes(request: web.Request, response: web.StreamResponse) -> None:
    if request.method not in SAFE_METHODS:
        request.app[NOTIFIER].bump()


async def _close(app: web.Application) -> None:
    app[NOTIFIER].close()


def setup(app: web.Application) -> Notifier:
    """Count every log entry and state-changing request; end the streams at shutdown."""
    notifier = app[NOTIFIER] = Notifier()
    access.app_backend(app).engine.log_listeners.append(notifier.bump)
    app.on_response_prepare.append(_bump_after_changes)
    app.on_shutdown.append(_close)
    return notifier
