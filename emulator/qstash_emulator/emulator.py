"""Emulator: owns the clock, scheduler, engine and HTTP server; runs in a thread or a loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from aiohttp import web

from .clock import DEFAULT_EPOCH, Clock, RealClock, VirtualClock
from .delivery import Delivery
from .durations import parse_duration
from .engine import Engine
from .http.app import create_app
from .ids import IdSource
from .scheduler import Scheduler
from .users import User, Users

T = TypeVar("T")


class Emulator:
    """A QStash emulator on 127.0.0.1.

    Sync code: `with Emulator() as emu:` (the server runs in a background thread).
    Async code: `async with Emulator() as emu:` (it runs in the current loop; use the `a*`
    methods, e.g. `await emu.aadvance("1h")`).
    """

    def __init__(
        self,
        *,
        clock: str | Clock = "virtual",
        start_time: float = DEFAULT_EPOCH,
        seed: int = 0,
        quota: str = "payg",
        host: str = "127.0.0.1",
        port: int = 0,
        keep_deliveries: int | None = None,
    ) -> None:
        if isinstance(clock, str):
            if clock not in ("virtual", "real"):
                raise ValueError("clock must be 'virtual', 'real' or a Clock")
            clock = VirtualClock(start_time) if clock == "virtual" else RealClock()
        self.clock: Clock = clock
        self.host = host
        self.port = port
        self.users = Users(quota)
        self.ids = IdSource(seed)
        self.scheduler = Scheduler(self.clock)
        self.delivery = Delivery()
        self.engine = Engine(
            clock=self.clock,
            scheduler=self.scheduler,
            users=self.users,
            ids=self.ids,
            delivery=self.delivery,
            wall=time.time,
            keep_deliveries=keep_deliveries,
        )
        self.app = create_app(self.engine, self.users)
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- identity -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def user(self) -> User:
        return self.users.default

    @property
    def token(self) -> str:
        return self.users.default.token

    def env(self, user: str | User | None = None) -> dict[str, str]:
        """QSTASH_URL, QSTASH_TOKEN and the signing keys, as an app reads them."""
        who = self._user(user)
        return who.env(self.url)

    def _user(self, user: str | User | None) -> User:
        if user is None:
            return self.users.default
        return user if isinstance(user, User) else self.users[user]

    # -- lifecycle in a running loop ------------------------------------------------------------
    async def start_async(self) -> Emulator:
        self._loop = asyncio.get_running_loop()
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        server = site._server
        if self.port == 0 and server is not None:
            sockets = getattr(server, "sockets", None) or []
            self.port = sockets[0].getsockname()[1]
        self.scheduler.start()
        return self

    async def stop_async(self) -> None:
        await self.scheduler.stop()
        await self.delivery.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Emulator:
        return await self.start_async()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_async()

    # -- lifecycle in a background thread -----------------------------------------------------
    def start(self) -> Emulator:
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        loop = asyncio.new_event_loop()
        self._loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start_async())
            except BaseException as exc:
                ready.set_exception(exc)
                return
            ready.set_result(None)
            loop.run_forever()
            loop.run_until_complete(self.stop_async())
            loop.close()

        self._thread = threading.Thread(target=run, name="qstash-emulator", daemon=True)
        self._thread.start()
        ready.result()
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the emulator's loop from another thread and wait for it."""
        if self._thread is None or self._loop is None:
            coro.close()
            raise RuntimeError(
                "the emulator runs in this event loop: await the async method (e.g. aadvance)"
            )
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    # -- time ---------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        return self.clock.now()

    async def aadvance(self, by: float | str) -> None:
        seconds = parse_duration(by) if isinstance(by, str) else float(by)
        await self.scheduler.advance(seconds)

    async def arun_until_idle(self, limit: float | str = 366 * 86400.0) -> None:
        await self.scheduler.run_until_idle(parse_duration(limit) if isinstance(limit, str) else limit)

    async def asettle(self) -> None:
        await self.scheduler.settle()

    def advance(self, by: float | str) -> None:
        """Move virtual time forward; everything due on the way runs, in order."""
        self.call(self.aadvance(by))

    def run_until_idle(self, limit: float | str = 366 * 86400.0) -> None:
        """Run due work, jumping virtual time ahead, until nothing is left to do."""
        self.call(self.arun_until_idle(limit))

    def settle(self) -> None:
        """Wait (without moving time) until work that is due now has finished."""
        self.call(self.asettle())

    # -- state --------------------------------------------------------------------------------
    async def areset(self, seed: int | None = None) -> None:
        """Forget every message, log, DLQ entry and timer; keys and users go back to defaults."""
        await self.scheduler.settle()
        self.scheduler.clear()
        self.engine.reset()
        self.ids.reset(seed)
        self.users.reset_keys()
        if isinstance(self.clock, VirtualClock):
            self.clock._now = DEFAULT_EPOCH

    def reset(self, seed: int | None = None) -> None:
        self.call(self.areset(seed))
