"""Emulator: owns the clock, scheduler, engine and HTTP server; runs in a thread or a loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

from aiohttp import web

from .backend import Backend
from .controls.captures import CaptureStore
from .controls.faults import Faults
from .controls.limits import Limits
from .core.clock import DEFAULT_EPOCH, Clock, RealClock, VirtualClock, real_monotonic
from .core.delivery import Delivery
from .core.engine import Engine
from .core.quotas import QUOTAS
from .core.retention import DEFAULT_WINDOW
from .core.scheduler import Scheduler
from .core.state import Delivered, Message
from .core.users import User, Users
from .http import emulator_routes
from .http.app import create_app
from .llm import LLMEngine
from .llm.jobs import LLMQueue
from .llm.publishing import LLMProviders
from .parsing.durations import parse_duration
from .resources.flow_control import FlowControl
from .resources.queues import Queues
from .resources.schedules import Schedules
from .resources.url_groups import UrlGroups
from .store import Store, open_store
from .workflows import WorkflowRuns

__all__ = ["Emulator"]

_T = TypeVar("_T")


class Emulator:
    """A QStash emulator on 127.0.0.1: HTTP API, signed deliveries and a clock you control.

    Sync code: `with Emulator() as emu:` runs the server on its own event loop in a background
    thread; the sync methods (`advance`, `settle`, `reset`, ...) hop to that loop and wait.
    Async code: `async with Emulator() as emu:` runs it in the current loop; there, await the
    `a*` twins (`aadvance`, `arun_until_idle`, `asettle`, `areset`) instead: the sync
    methods need the emulator in its own thread. From another loop, wrap them in `acall`.

    Durations are seconds (float) or QStash duration strings such as "1h30m"; times are
    seconds since the Unix epoch on `clock`.

    Args:
        clock: "virtual" (time moves only when told to), "real" (wall time, as the dev
            server), or a `Clock`.
        start_time: Where a virtual clock starts (default 2025-01-01T00:00:00Z).
        seed: Seeds ids and the LLM's default text, so runs are reproducible.
        quota: The built-in users' plan tier, "payg" or "pro".
        host: The address to bind (keep it local).
        port: The port; 0 picks a free one (read `url` after `start`).
        keep_deliveries: How many delivery records `deliveries` keeps (None: all).
        auto_advance: Let `await_until` (and the LLM API's waits) skip idle virtual time.
        data_dir: Keep state in `<data_dir>/state.db` (SQLite) and resume it when an emulator
            starts on the same directory (see README, Persistence). None (the default): state
            lives in memory only.
        store: A `Store` to use instead of the one `data_dir` chooses.

    Raises:
        ValueError: If `clock` is a string other than "virtual" or "real".
        StoreError: If the data file is newer, corrupt, foreign or in use (never changed).
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
        auto_advance: bool = False,
        finished_retention: float | str = DEFAULT_WINDOW,
        data_dir: str | os.PathLike[str] | None = None,
        store: Store | None = None,
    ) -> None:
        if isinstance(clock, str):
            if clock not in ("virtual", "real"):
                raise ValueError("clock must be 'virtual', 'real' or a Clock")
            clock = VirtualClock(start_time) if clock == "virtual" else RealClock()
        self.clock: Clock = clock
        self.host = host
        self.port = port
        # While something waits for a result (await_until), skip idle virtual time.
        self.auto_advance = auto_advance
        if store is None:
            store = open_store(None if data_dir is None else os.fspath(data_dir))
        self.store = store
        self.backend = Backend(
            clock,
            seed=seed,
            quota=quota,
            keep_deliveries=keep_deliveries,
            # How long a delivered or failed message stays readable by id (emulator clock).
            finished_retention=_seconds(finished_retention),
            store=store,
        )
        self.restored = 0  # unfinished messages a persistent store brought back at start
        self.llm_service = self.backend.llm
        self.llm_service.auto_advance = lambda: self.auto_advance
        self.llm_service.public_url = lambda: self.url
        self.app = create_app(self.backend)
        # /__emulator/: clock, advance, run until idle, reset, trigger (for other processes).
        self.control = emulator_routes.install(self.app, self)
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- identity -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The server's base URL, e.g. "http://127.0.0.1:8080" (the port is known after start)."""
        return f"http://{self.host}:{self.port}"

    @property
    def dashboard_url(self) -> str:
        """The local dashboard's address, e.g. "http://127.0.0.1:8080/__dashboard"."""
        return self.url + "/__dashboard"

    @property
    def user(self) -> User:
        """The default user (the dev server's `defaultUser`)."""
        return self.users.default

    @property
    def token(self) -> str:
        """The default user's QStash token."""
        return self.users.default.token

    def env(self, user: str | User | None = None) -> dict[str, str]:
        """QSTASH_URL, QSTASH_TOKEN and the signing keys, as an app reads them.

        Args:
            user: A user or user name; default: the default user.
        """
        who = self._user(user)
        return who.env(self.url)

    def _user(self, user: str | User | None) -> User:
        if user is None:
            return self.users.default
        return user if isinstance(user, User) else self.users[user]

    # -- the backend's parts ---------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        """The transport-free engine (messages, logs, DLQ)."""
        return self.backend.engine

    @property
    def scheduler(self) -> Scheduler:
        """The due-work heap the clock drives."""
        return self.backend.scheduler

    @property
    def users(self) -> Users:
        """The users the API accepts."""
        return self.backend.users

    @property
    def schedules(self) -> Schedules:
        """Cron schedules."""
        return self.backend.schedules

    @property
    def flow_control(self) -> FlowControl:
        """Flow-control keys and global parallelism."""
        return self.backend.flow_control

    @property
    def queues(self) -> Queues:
        """Queues."""
        return self.backend.queues

    @property
    def url_groups(self) -> UrlGroups:
        """URL groups (topics)."""
        return self.backend.url_groups

    @property
    def workflows(self) -> WorkflowRuns:
        """Upstash Workflow runs and waiters: `emu.workflows.runs(user)`, `.notify(...)`."""
        return self.backend.workflows

    @property
    def limits(self) -> Limits:
        """Injected rate limits: `emu.limits.configure(user, daily_messages=...)`."""
        return self.backend.limits

    @property
    def faults(self) -> Faults:
        """Injected delivery faults: `emu.faults.add(url, fail_times=2)`, ..."""
        return self.backend.faults

    @property
    def delivery(self) -> Delivery:
        """The delivery client: `emu.delivery.rewrite(published_prefix, local_prefix)`."""
        return self.backend.delivery

    @property
    def captures(self) -> CaptureStore:
        """What each capture URL (`{url}/__capture/{name}`) received, and its replies."""
        return self.backend.captures

    @property
    def deliveries(self) -> list[Delivered]:
        """Every delivery attempt so far, oldest first.

        Read it on the emulator's loop, or after `settle()`.
        """
        return list(self.backend.engine.delivered)

    @property
    def pending_messages(self) -> list[Message]:
        """Every user's unfinished messages (waiting, delayed, in flight or due a retry)."""
        return [m for st in self.backend.engine.states.values() for m in st.messages.values()]

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised by scheduled work since the last reset (none, normally)."""
        return list(self.backend.scheduler.errors)

    # -- extension points ---------------------------------------------------------------------
    def add_delivery_listener(self, listener: Callable[[Delivered], None]) -> None:
        """Call `listener(record)` on the emulator's loop once each attempt's answer is in."""
        self.backend.engine.delivery_listeners.append(listener)

    def add_settled_listener(self, listener: Callable[[Delivered], None]) -> None:
        """Call `listener(record)` on the emulator's loop once each attempt's outcome is settled.

        Then `record.message.state` is DELIVERED, RETRY (its next timer armed), FAILED or
        CANCELED.
        """
        self.backend.engine.settled_listeners.append(listener)

    def add_reset_hook(self, hook: Callable[[], None]) -> None:
        """Call `hook()` at the end of every reset (on the emulator's loop)."""
        self.backend.reset_hooks.append(hook)

    def add_middleware(self, middleware: Any) -> None:
        """Put an aiohttp middleware outermost, in front of the API's own.

        Raises:
            RuntimeError: If the emulator has started.
        """
        if self._runner is not None:
            raise RuntimeError("add middlewares before the emulator starts")
        self.app.middlewares.insert(0, middleware)

    def set_quota(self, tier: str, *, keep: Iterable[str] = ()) -> None:
        """Give every user but those named in `keep` the plan tier `tier` ("payg", "pro").

        Raises:
            ValueError: If `tier` is not a known tier.
        """
        if tier not in QUOTAS:
            raise ValueError(f"unknown quota tier {tier!r} (known: {', '.join(sorted(QUOTAS))})")
        kept = set(keep)
        for user in self.users:
            if user.name not in kept:
                user.quota = QUOTAS[tier]
        self.users.quota_name = tier

    @property
    def llm(self) -> LLMEngine:
        """The scripted LLM engine: `emu.llm.reply(...)`, `.load_script(path)`, `.calls`."""
        return self.llm_service.llm

    @property
    def llm_providers(self) -> LLMProviders:
        """Provider hosts the script answers: api.openai.com, plus `add(base_url)`."""
        return self.llm_service.providers

    @property
    def llm_queue(self) -> LLMQueue:
        """The /queue worker queue: `emu.llm_queue.configure(concurrency=, rate=, max_size=)`."""
        return self.llm_service.queue

    @property
    def llm_passthrough(self) -> bool:
        """True: deliveries to provider hosts go out to the real provider (api/llm never does)."""
        return self.llm_service.providers.passthrough

    @llm_passthrough.setter
    def llm_passthrough(self, value: bool) -> None:
        self.llm_service.providers.passthrough = value

    # -- lifecycle in a running loop ------------------------------------------------------------
    async def start_async(self) -> Emulator:
        """Start the server and scheduler in the running event loop; returns self.

        Use this (or `async with`) from async code; then use the `a*` methods.
        """
        self._loop = asyncio.get_running_loop()
        self.restored = self.backend.restore()
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
        """Stop the scheduler, delivery connections and server (on the emulator's loop)."""
        await self.scheduler.stop()
        await self.backend.delivery.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.store.close()

    async def __aenter__(self) -> Emulator:
        return await self.start_async()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_async()

    # -- lifecycle in a background thread -----------------------------------------------------
    def start(self) -> Emulator:
        """Start the server on a new event loop in a daemon thread; returns once it listens.

        Use this (or `with`) from sync code; the sync methods then run on that thread's loop.
        """
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        loop = asyncio.new_event_loop()
        # A freeze_time in the test must not freeze this loop's own timers (I/O timeouts).
        setattr(loop, "time", real_monotonic)  # noqa: B010
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
        """Stop the background thread's loop and server; a no-op if not started with `start`."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run a coroutine on the emulator's loop from another thread and wait for its result.

        Raises:
            RuntimeError: If the emulator runs in the caller's loop (await the coroutine there).
        """
        if self._thread is None or self._loop is None:
            coro.close()
            raise RuntimeError(
                "the emulator runs in this event loop: await the async method (e.g. aadvance)"
            )
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def post(self, fn: Callable[..., _T], *args: Any) -> concurrent.futures.Future[_T]:
        """Run a plain function on the emulator's loop soon, from another thread, without waiting.

        The loop runs callbacks in order, so requests that reach the server after this call see
        its effect; read state directly only after the future is done.

        Raises:
            RuntimeError: If the emulator runs in the caller's loop (call the function directly).
        """
        loop = self._loop
        if self._thread is None or loop is None:
            raise RuntimeError("the emulator runs in this event loop: call it directly")
        done: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(fn(*args))
            except BaseException as exc:
                done.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return done

    def call_soon(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run a plain function on the emulator's loop from another thread and wait for its result.

        Cheaper than `call` (no task) for quick state changes.
        """
        return self.post(fn, *args).result()

    async def acall(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Await a coroutine on the emulator's loop, from any event loop.

        For async tests while the emulator runs in its own thread; in the emulator's own loop the
        coroutine is simply awaited. Wrap the `a*` twins in it when the loops differ, e.g.
        `await emu.acall(emu.aadvance("1h"))`.
        """
        loop = self._loop
        if self._thread is None or loop is None or loop is asyncio.get_running_loop():
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    # -- time ---------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        """The emulator's current time, in seconds since the Unix epoch."""
        return self.clock.now()

    async def aadvance(self, by: float | str) -> None:
        """Move virtual time forward by `by`; everything due on the way runs, each at its due time.

        The async twin of `advance`: await it on the emulator's loop. On return, work started on
        the way (deliveries, retries, callbacks) has finished.

        Args:
            by: Seconds, or a duration such as "10m".

        Raises:
            RuntimeError: If the clock is not virtual.
            ValueError: If `by` is negative.
        """
        await self.scheduler.advance(_seconds(by))

    async def arun_until_idle(self, limit: float | str = 366 * 86400.0) -> None:
        """Jump virtual time from due work to due work until nothing is left.

        The async twin of `run_until_idle`: await it on the emulator's loop.

        Args:
            limit: Stop after this much virtual time (seconds or a duration; default a year), so
                a cron schedule, which is never idle, does not run forever.
        """
        await self.scheduler.run_until_idle(_seconds(limit))

    async def asettle(self) -> None:
        """Wait, without moving time, until work that is due now has finished.

        The async twin of `settle`: await it on the emulator's loop. Work that fell due because
        freezegun moved time (`tick`, `move_to`) runs first, each at its own due time.
        """
        await self.scheduler.catch_up()

    async def await_until(
        self, done: Callable[[], bool], timeout: float | str | None = None
    ) -> bool:
        """Wait until `done()` holds; False if it does not within `timeout`.

        Virtual clock with `auto_advance`: idle virtual time is skipped from due work to due
        work, up to `timeout` virtual seconds (default a year). Without it only work due now
        runs. Real clock: waits up to `timeout` wall seconds (default 10).
        """
        if not self.clock.virtual:
            return await self.scheduler.wait_real(done, _seconds(timeout, 10.0))
        if self.auto_advance:
            return await self.scheduler.run_until(done, _seconds(timeout, 366 * 86400.0))
        await self.scheduler.catch_up()
        return done()

    def wait_until(self, done: Callable[[], bool], timeout: float | str | None = None) -> bool:
        """`await_until` from another thread."""
        return self.call(self.await_until(done, timeout))

    def advance(self, by: float | str) -> None:
        """Move virtual time forward by `by` (seconds or a duration); due work runs, in order.

        From sync code, with the emulator in its thread; async code awaits `aadvance`.
        """
        self.call(self.aadvance(by))

    def run_until_idle(self, limit: float | str = 366 * 86400.0) -> None:
        """Run due work, jumping virtual time ahead, until none is left (see `arun_until_idle`)."""
        self.call(self.arun_until_idle(limit))

    def settle(self) -> None:
        """Wait, without moving time, until work that is due now has finished (see `asettle`)."""
        self.call(self.asettle())

    # -- run now ------------------------------------------------------------------------------
    def run_now(self, message_id: str, user: str | User | None = None) -> None:
        """Deliver a delayed or retrying message now (`POST /v2/messages/{id}/retry`)."""
        self.call_soon(self.engine.run_now, self._user(user), message_id)

    def trigger(self, schedule_id: str, user: str | User | None = None) -> Any:
        """Fire a schedule now, once, outside its cron times; answers the publish response."""
        return self.call_soon(self.schedules.trigger, self._user(user), schedule_id)

    async def arun_now(self, message_id: str, user: str | User | None = None) -> None:
        """`run_now` from async code."""
        await self.acall(self._in_loop(self.engine.run_now, self._user(user), message_id))

    async def atrigger(self, schedule_id: str, user: str | User | None = None) -> Any:
        """`trigger` from async code."""
        who = self._user(user)
        return await self.acall(self._in_loop(self.schedules.trigger, who, schedule_id))

    @staticmethod
    async def _in_loop(fn: Callable[..., _T], *args: Any) -> _T:
        return fn(*args)

    # -- state --------------------------------------------------------------------------------
    async def areset(self, seed: int | None = None) -> None:
        """Forget every message, log, DLQ entry, timer and resource; restore keys and the clock.

        The async twin of `reset`: await it on the emulator's loop. Work still running is
        cancelled (a slow or dead destination must not stall a reset). Users and tokens stay.

        Args:
            seed: Restart ids from this seed (default: the current seed).
        """
        await self.scheduler.cancel_running()
        self._reset_state(seed)

    def _reset_state(self, seed: int | None) -> None:
        self.backend.reset(seed)

    def reset_if_idle(self, seed: int | None = None) -> bool:
        """On the emulator's loop: reset at once, unless work is running (then await `areset`).

        Returns:
            Whether the reset happened.
        """
        if self.scheduler.busy:
            return False
        self._reset_state(seed)
        return True

    def reset(self, seed: int | None = None) -> None:
        """Reset from sync code (see `areset`); with the emulator in its thread."""
        # One hop to the loop, no task, when nothing runs (a test suite resets per test).
        if not self.call_soon(self.reset_if_idle, seed):
            self.call(self.areset(seed))


def _seconds(value: float | str | None, default: float = 0.0) -> float:
    """Seconds, or a QStash duration such as "1h30m"; `default` when None."""
    if value is None:
        return default
    return parse_duration(value) if isinstance(value, str) else float(value)
