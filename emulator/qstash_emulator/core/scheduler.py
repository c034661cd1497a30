"""One due-work heap for everything that happens later: delays, retries, cron firings, releases.

Work that is due now starts at once as an asyncio task; later work waits in the heap. With a
virtual clock nothing moves until `advance`/`run_until_idle` is awaited; with the real clock a
runner task sleeps until the next entry is due. Ties are broken by an `order` tuple the caller
derives from stable ids, so the same test runs its work in the same order every time.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .clock import Clock, VirtualClock
from .gc_tuning import replaying

__all__ = [
    "IDLE_HORIZON",
    "IDLE_MAX_STEPS",
    "NotIdleError",
    "Scheduler",
    "Timer",
    "Work",
    "WorkWithArg",
]

_log = logging.getLogger("qstash_emulator")

Work = Callable[[], Awaitable[None]]
# Work that takes one argument (`call_at(..., arg=x)` runs `work(x)`): one bound method serves
# every timer, so a held timer costs no closure of its own.
WorkWithArg = Callable[[Any], Awaitable[None]]

# run_until_idle's bounds: a year of virtual time, and at most this many jumps from due work to
# due work (a cron schedule is never idle; neither is an app that publishes on every delivery).
IDLE_HORIZON = 366 * 86400.0
IDLE_MAX_STEPS = 1000


class NotIdleError(RuntimeError):
    """run_until_idle reached its horizon or step limit with work still due."""


def describe(timer: Timer) -> str:
    """What a timer is, for NotIdleError: its `what`, or a message's id from its argument."""
    if timer.what:
        return timer.what
    message_id = getattr(timer.arg, "id", None)
    return f"message {message_id}" if isinstance(message_id, str) else ""


@dataclass(order=True, slots=True)
class Timer:
    """An entry of the scheduler's heap: `work` due at `due` (clock seconds); ties go by `order`."""

    due: float
    order: tuple[int, ...]
    seq: int
    work: Work | WorkWithArg = field(compare=False)
    arg: Any = field(default=None, compare=False)
    cancelled: bool = field(default=False, compare=False)
    what: str = field(default="", compare=False)  # "schedule scd_…", "message msg_…": for errors

    def run(self) -> Awaitable[None]:
        """Call the work: `work(arg)`, or `work()` when there is no argument."""
        if self.arg is None:
            return self.work()  # type: ignore[call-arg]
        return self.work(self.arg)  # type: ignore[call-arg]

    def cancel(self) -> None:
        """Keep the work from starting (a no-op once it has started)."""
        self.cancelled = True


class Scheduler:
    """One due-work heap for everything that happens later: delays, retries, cron, releases.

    Must be used from the event loop it runs on (it creates asyncio tasks there). Work due when
    scheduled starts at once as a task; later work waits in the heap until the clock reaches it
    (an advance runs a timer due alone inline, without a task of its own). With a
    `VirtualClock` time moves only through `advance`, `advance_to`, `run_until_idle` and
    `run_until`; with a real clock `start` runs a task that sleeps until the next due entry.
    Exceptions raised by work are logged and collected in `errors`.

    Args:
        clock: The clock due times are compared with (seconds since the Unix epoch).
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._heap: list[Timer] = []
        self._seq = itertools.count()
        self._inflight: set[asyncio.Task[None]] = set()
        self._wake: asyncio.Event | None = None
        self._runner: asyncio.Task[None] | None = None
        self.errors: list[BaseException] = []
        self._progress: asyncio.Event | None = None  # set when started work ends (waiters)
        self._fired: Counter[str] | None = None  # what ran, while run_until_idle counts
        self._idle: list[asyncio.Future[None]] = []  # settle() waiters: resolved when idle
        # The task running due work inline (see _run_due), so a reset can cancel it too.
        self._inline: asyncio.Task[Any] | None = None
        # Work the inline work made due at once (a cron firing's message): run inline next.
        self._follow: list[Timer] = []

    # -- scheduling -------------------------------------------------------------------------
    def call_at(
        self,
        due: float,
        work: Work | WorkWithArg,
        order: tuple[int, ...] = (),
        arg: Any = None,
        what: str = "",
    ) -> Timer:
        """Run `work()` (or `work(arg)`) at `due` (clock seconds); at once if that is not later.

        Args:
            due: When the work is due.
            work: A coroutine function, taking `arg` when one is given.
            order: Tie-break among entries due at the same instant (from stable ids, so a run is
                repeatable).
            arg: The argument for `work`; None calls it without one.
            what: What the work is ("schedule scd_…"), named when run_until_idle stays busy.

        Returns:
            A timer whose `cancel()` keeps the work from starting.
        """
        timer = Timer(due, order, next(self._seq), work, arg, what=what)
        if due <= self.clock.now():
            if self._inline is not None and self._inline is asyncio.current_task():
                self._follow.append(timer)
            else:
                self._start(timer)
        else:
            heapq.heappush(self._heap, timer)
            if self._wake is not None:
                self._wake.set()
        return timer

    def call_soon(self, work: Work, order: tuple[int, ...] = ()) -> Timer:
        """Run `work` now, as a task (see `call_at`)."""
        return self.call_at(self.clock.now(), work, order)

    def _start(self, timer: Timer) -> None:
        if timer.cancelled:
            return
        task = asyncio.get_running_loop().create_task(self._run(timer))
        self._inflight.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        if not self._inflight and self._idle:
            for waiter in self._idle:
                if not waiter.done():
                    waiter.set_result(None)
            self._idle.clear()
        if self._progress is not None:
            self._progress.set()

    async def _run(self, timer: Timer) -> None:
        if self._fired is not None:
            self._fired[describe(timer)] += 1
        try:
            await timer.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in one job must not stop the scheduler
            _log.exception("scheduled work failed")
            self.errors.append(exc)

    def _start_due(self) -> None:
        now = self.clock.now()
        while self._heap and self._heap[0].due <= now:
            self._start(heapq.heappop(self._heap))

    def _pop_due(self, now: float) -> Timer | None:
        while self._heap and self._heap[0].due <= now:
            timer = heapq.heappop(self._heap)
            if not timer.cancelled:
                return timer
        return None

    async def _run_due(self) -> None:
        """Run the work due now and wait for it, and for what it starts.

        A timer due alone, with nothing else running, is awaited right here: replaying a long
        stretch of virtual time (a cron schedule over a week) pays no task per item. So is the
        work it makes due at once (the firing's message, then its callback) while that comes
        one at a time. Several due at once start together as tasks, in (due, order) order.
        """
        now = self.clock.now()
        timer = self._pop_due(now)
        if timer is not None:
            alone = not self._inflight and self.next_due() != now
            if alone and self._inline is None:
                self._inline = asyncio.current_task()
                try:
                    await self._run(timer)
                    while len(self._follow) == 1 and not self._inflight:
                        later = self._follow.pop()
                        if not later.cancelled:
                            await self._run(later)
                finally:
                    self._inline = None
                    follow, self._follow = self._follow, []
                    for later in follow:
                        self._start(later)
            else:
                self._start(timer)
                self._start_due()
        await self.settle()

    def next_due(self) -> float | None:
        """The due time of the earliest pending entry, or None when nothing is pending."""
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0].due if self._heap else None

    @property
    def busy(self) -> bool:
        """True while started work is still running."""
        return bool(self._inflight) or self._inline is not None

    # -- virtual time -----------------------------------------------------------------------
    async def settle(self) -> None:
        """Wait until no started work is still running (work it starts included)."""
        # A future resolved when the last task ends: far cheaper per step than asyncio.wait.
        while self._inflight:
            waiter = asyncio.get_running_loop().create_future()
            self._idle.append(waiter)
            await waiter

    async def advance_to(self, target: float) -> None:
        """Move a virtual clock to `target`, running each entry at its own due time on the way.

        Work started meanwhile (retries, callbacks) runs too if it falls due before `target`; on
        return no started work is still running.

        Raises:
            RuntimeError: If the clock is not virtual.
        """
        clock = self.clock
        if not isinstance(clock, VirtualClock):
            raise RuntimeError("advance() needs a virtual clock")
        # Pinned: work runs at its own due time even when a freezegun time is already ahead.
        with clock.pinned(), replaying():
            await self.settle()
            while True:
                due = self.next_due()
                if due is None or due > target:
                    break
                clock.set(due)
                await self._run_due()
            clock.set(target)
            await self._run_due()

    async def advance(self, seconds: float) -> None:
        """Move a virtual clock forward by `seconds`, running what falls due (see `advance_to`).

        Raises:
            ValueError: If `seconds` is negative.
            RuntimeError: If the clock is not virtual.
        """
        if seconds < 0:
            raise ValueError("cannot advance by a negative duration")
        await self.advance_to(self.clock.now() + seconds)

    async def run_until_idle(
        self, limit: float = IDLE_HORIZON, max_steps: int = IDLE_MAX_STEPS
    ) -> None:
        """Jump from due entry to due entry until none is left.

        Bounded, because some work is never idle (a cron schedule): past `limit` seconds of
        virtual time or `max_steps` jumps with work still due, raise NotIdleError naming what
        kept firing.
        """
        start = self.clock.now()
        end = start + limit
        self._fired = Counter()
        try:
            await self.settle()
            steps = 0
            while True:
                due = self.next_due()
                if due is None:
                    return
                if due > end:
                    raise NotIdleError(
                        self._busy_report(f"{limit:g} s of virtual time", due - start)
                    )
                if steps >= max_steps:
                    raise NotIdleError(self._busy_report(f"{max_steps} steps", due - start))
                steps += 1
                await self.advance_to(due)
        finally:
            self._fired = None

    def _busy_report(self, bound: str, elapsed: float) -> str:
        fired = self._fired or Counter()
        pending = Counter(describe(t) for t in self._heap if not t.cancelled)
        schedules = sorted(
            {w.split(" ", 1)[1] for w in fired + pending if w.startswith("schedule ")}
        )
        lines = [
            f"run_until_idle: still busy after {bound} (next due work {elapsed:g} s after the "
            "start)"
        ]
        if schedules:
            lines.append(
                f"schedules keep firing: {', '.join(schedules)}; use advance() to move time by "
                "a set amount, or pause or delete them"
            )
        busiest = [f"{what} ({n}x)" for what, n in fired.most_common(5) if what]
        if busiest:
            lines.append("ran most often: " + ", ".join(busiest))
        waiting = [what for what, _ in pending.most_common(5) if what]
        if waiting:
            lines.append("still due: " + ", ".join(waiting))
        lines.append("(raise run_until_idle's limit= or max_steps= if this much work is expected)")
        return "\n".join(lines)

    async def catch_up(self) -> None:
        """Run what fell due while time moved outside the scheduler, then wait for work due now.

        Freezegun's `tick`/`move_to` move a following `VirtualClock` without the scheduler; each
        entry still runs at its own due time. On a real clock this only waits for started work.
        This is the sync point before any assertion.
        """
        if isinstance(self.clock, VirtualClock):
            await self.advance_to(self.clock.now())
        else:
            await self.settle()

    async def run_until(self, done: Callable[[], bool], limit: float) -> bool:
        """Auto-advance until `done()` holds.

        On a virtual clock: skip idle time from due entry to due entry. On a real clock: wait (up
        to `limit` wall seconds) for started work to make `done()` true.

        Args:
            done: Checked after each step.
            limit: Seconds (virtual or wall) to give up after.

        Returns:
            Whether `done()` held before nothing more was due within `limit`.
        """
        if not isinstance(self.clock, VirtualClock):
            return await self.wait_real(done, limit)
        await self.catch_up()
        end = self.clock.now() + limit
        while not done():
            due = self.next_due()
            if due is None or due > end:
                return False
            await self.advance_to(due)
        return True

    async def wait_real(self, done: Callable[[], bool], limit: float) -> bool:
        """Wait, without moving time, until `done()` holds (re-checked whenever work ends)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        progress = self._progress = self._progress or asyncio.Event()
        while True:
            progress.clear()
            if done():
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(progress.wait(), remaining)

    async def cancel_running(self) -> None:
        """Cancel started work (a reset must not wait for a slow or dead destination).

        Work an advance runs inline is cancelled with that advance.
        """
        inline = self._inline
        if inline is not None and inline is not asyncio.current_task():
            inline.cancel()
            await asyncio.gather(inline, return_exceptions=True)
        while self._inflight:
            tasks = list(self._inflight)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- real time --------------------------------------------------------------------------
    def start(self) -> None:
        """Run due work on the wall clock (standalone server); no-op for a virtual clock."""
        if self.clock.virtual or self._runner is not None:
            return
        self._wake = asyncio.Event()
        self._runner = asyncio.get_running_loop().create_task(self._run_real_time())

    async def _run_real_time(self) -> None:
        assert self._wake is not None
        while True:
            self._start_due()
            due = self.next_due()
            self._wake.clear()
            timeout = None if due is None else max(0.0, due - self.clock.now())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def stop(self) -> None:
        """Stop the real-time runner and cancel started work (server shutdown)."""
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None
        await self.cancel_running()

    def clear(self) -> None:
        """Drop all pending timers (a test's reset); running work is left to finish."""
        for timer in self._heap:
            timer.cancel()
        self._heap.clear()
