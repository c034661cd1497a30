"""The scheduler on its own: a virtual clock, plain coroutines as work, no server, no sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from qstash_emulator.core.clock import RealClock, VirtualClock
from qstash_emulator.core.scheduler import NotIdleError, Scheduler

T0 = 1_000_000.0


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0, follow_freezegun=False)


@pytest.fixture
def scheduler(clock: VirtualClock) -> Scheduler:
    return Scheduler(clock)


Ran = list[tuple[str, float]]


def job(ran: Ran, name: str, clock: VirtualClock) -> Callable[[], Awaitable[None]]:
    """Work that records its name and the time it ran at."""

    async def work() -> None:
        ran.append((name, clock.now()))

    return work


async def test_due_work_runs_in_due_time_then_order(
    scheduler: Scheduler, clock: VirtualClock
) -> None:
    ran: Ran = []
    # Added out of order on purpose: the heap, not insertion, decides.
    scheduler.call_at(T0 + 20, job(ran, "late", clock), order=(0,))
    scheduler.call_at(T0 + 10, job(ran, "b", clock), order=(2,))
    scheduler.call_at(T0 + 10, job(ran, "a2", clock), order=(1, 5))
    scheduler.call_at(T0 + 10, job(ran, "a1", clock), order=(1,))
    scheduler.call_at(T0 + 5, job(ran, "first", clock), order=(9,))
    await scheduler.run_until_idle()
    assert ran == [
        ("first", T0 + 5),
        ("a1", T0 + 10),
        ("a2", T0 + 10),
        ("b", T0 + 10),
        ("late", T0 + 20),
    ]
    assert clock.now() == T0 + 20
    assert scheduler.next_due() is None


async def test_equal_due_time_and_order_run_in_insertion_order(
    scheduler: Scheduler, clock: VirtualClock
) -> None:
    ran: Ran = []
    for name in ("x", "y", "z"):
        scheduler.call_at(T0 + 1, job(ran, name, clock), order=(3,))
    await scheduler.run_until_idle()
    assert [name for name, _ in ran] == ["x", "y", "z"]


async def test_work_due_now_starts_at_once_and_settle_waits_for_it(
    scheduler: Scheduler, clock: VirtualClock
) -> None:
    release = asyncio.Event()
    done: list[str] = []

    async def slow() -> None:
        await release.wait()
        done.append("slow")

    scheduler.call_soon(slow)
    assert scheduler.busy  # started, not queued
    assert scheduler.next_due() is None
    release.set()
    await scheduler.settle()
    assert done == ["slow"]
    assert not scheduler.busy
    assert clock.now() == T0  # settling never moves time


async def test_work_due_in_the_past_runs_now_without_rewinding(
    scheduler: Scheduler, clock: VirtualClock
) -> None:
    ran: Ran = []
    scheduler.call_at(T0 - 100, job(ran, "overdue", clock))
    await scheduler.settle()
    assert ran == [("overdue", T0)]


async def test_advance_runs_only_what_falls_due_and_stops_at_the_target(
    scheduler: Scheduler, clock: VirtualClock
) -> None:
    ran: Ran = []
    scheduler.call_at(T0 + 10, job(ran, "at10", clock))
    scheduler.call_at(T0 + 30, job(ran, "at30", clock))
    await scheduler.advance(9.999)
    assert ran == []
    assert clock.now() == pytest.approx(T0 + 9.999)
    await scheduler.advance(0.001)  # the boundary is included
    assert ran == [("at10", T0 + 10)]
    await scheduler.advance(15)
    assert ran == [("at10", T0 + 10)]
    assert clock.now() == T0 + 25
    assert scheduler.next_due() == T0 + 30


async def test_work_scheduled_by_work_runs_within_the_same_advance(
    scheduler: Scheduler, clock: VirtualClock
) -> None:
    ran: Ran = []

    async def chain(n: int) -> None:
        ran.append((f"step{n}", clock.now()))
        if n < 3:
            scheduler.call_at(clock.now() + 5, lambda: chain(n + 1))

    scheduler.call_at(T0 + 5, lambda: chain(1))
    await scheduler.advance(12)
    assert ran == [("step1", T0 + 5), ("step2", T0 + 10)]
    await scheduler.advance(3)
    assert ran[-1] == ("step3", T0 + 15)


async def test_advance_refuses_negative_durations_and_real_clocks(scheduler: Scheduler) -> None:
    with pytest.raises(ValueError, match="negative"):
        await scheduler.advance(-1)
    with pytest.raises(RuntimeError, match="virtual clock"):
        await Scheduler(RealClock()).advance(1)


async def test_run_until_idle_stops_at_its_limit_for_work_that_never_ends(
    scheduler: Scheduler, clock: VirtualClock
) -> None:
    ticks: list[float] = []

    async def every_hour() -> None:  # like a cron schedule: always something due next
        ticks.append(clock.now())
        scheduler.call_at(clock.now() + 3600, every_hour)

    scheduler.call_at(T0 + 3600, every_hour)
    # Never idle: past its limit it says so (NotIdleError) instead of returning as if idle.
    with pytest.raises(NotIdleError, match="after 18000 s of virtual time"):
        await scheduler.run_until_idle(limit=5 * 3600)
    assert ticks == [T0 + 3600 * n for n in range(1, 6)]
    assert scheduler.next_due() == T0 + 6 * 3600  # still pending, not run


async def test_cancelled_timers_never_run(scheduler: Scheduler, clock: VirtualClock) -> None:
    ran: Ran = []
    first = scheduler.call_at(T0 + 1, job(ran, "cancelled", clock))
    scheduler.call_at(T0 + 2, job(ran, "kept", clock))
    first.cancel()
    assert scheduler.next_due() == T0 + 2  # a cancelled head is skipped
    await scheduler.run_until_idle()
    assert ran == [("kept", T0 + 2)]


async def test_clear_drops_pending_work(scheduler: Scheduler, clock: VirtualClock) -> None:
    ran: Ran = []
    scheduler.call_at(T0 + 1, job(ran, "a", clock))
    scheduler.call_at(T0 + 2, job(ran, "b", clock))
    scheduler.clear()
    assert scheduler.next_due() is None
    await scheduler.advance(10)
    assert ran == []


async def test_a_failing_job_is_recorded_and_does_not_stop_the_rest(
    scheduler: Scheduler, clock: VirtualClock
) -> None:
    ran: Ran = []

    async def broken() -> None:
        raise KeyError("bug")

    scheduler.call_at(T0 + 1, broken, order=(0,))
    scheduler.call_at(T0 + 1, job(ran, "after", clock), order=(1,))
    await scheduler.run_until_idle()
    assert ran == [("after", T0 + 1)]
    assert [repr(e) for e in scheduler.errors] == ["KeyError('bug')"]


async def test_run_until_skips_idle_time_until_the_condition_holds(
    scheduler: Scheduler, clock: VirtualClock
) -> None:
    ran: Ran = []
    for n in range(1, 4):
        scheduler.call_at(T0 + 100 * n, job(ran, f"j{n}", clock))
    assert await scheduler.run_until(lambda: len(ran) >= 2, limit=1000) is True
    assert [name for name, _ in ran] == ["j1", "j2"]
    assert clock.now() == T0 + 200  # stopped as soon as it held, j3 still pending
    assert await scheduler.run_until(lambda: len(ran) >= 9, limit=1000) is False
    assert len(ran) == 3


async def test_cancel_running_stops_started_work(scheduler: Scheduler) -> None:
    started = asyncio.Event()
    finished: list[str] = []

    async def hangs() -> None:
        started.set()
        await asyncio.Event().wait()
        finished.append("never")

    scheduler.call_soon(hangs)
    await started.wait()
    assert scheduler.busy
    await scheduler.cancel_running()
    assert not scheduler.busy
    assert finished == []
    assert scheduler.errors == []  # a cancellation is not an error


async def test_work_with_an_argument_gets_it(scheduler: Scheduler, clock: VirtualClock) -> None:
    got: list[tuple[object, float]] = []

    async def handle(item: object) -> None:
        got.append((item, clock.now()))

    scheduler.call_at(T0 + 2, handle, order=(1,), arg="second")
    scheduler.call_at(T0 + 2, handle, order=(0,), arg="first")
    await scheduler.run_until_idle()
    assert got == [("first", T0 + 2), ("second", T0 + 2)]


async def test_work_made_due_by_inline_work_runs_inline_one_at_a_time(
    scheduler: Scheduler, clock: VirtualClock
) -> None:
    # A cron firing publishes a message due at once, whose attempt spawns a callback due at
    # once: a chain that comes one at a time runs in the advancing task, in order, no task each.
    advancing: list[asyncio.Task[object] | None] = []
    ran: Ran = []

    def step(name: str, then: Callable[[], None] | None = None) -> Callable[[], Awaitable[None]]:
        async def work() -> None:
            advancing.append(asyncio.current_task())
            ran.append((name, clock.now()))
            if then is not None:
                then()

        return work

    def spawn_callback() -> None:
        scheduler.call_at(clock.now(), step("callback"))

    def spawn_message() -> None:
        scheduler.call_at(clock.now(), step("message", spawn_callback))

    scheduler.call_at(T0 + 60, step("firing", spawn_message))
    task = asyncio.ensure_future(scheduler.advance(120))
    await task
    assert ran == [("firing", T0 + 60), ("message", T0 + 60), ("callback", T0 + 60)]
    assert advancing == [task, task, task]


async def test_work_made_due_together_by_inline_work_runs_concurrently(
    scheduler: Scheduler, clock: VirtualClock
) -> None:
    # A fan-out (a URL group's endpoints) must not run one delivery after another: each is a
    # task of its own, started in creation order; a cancelled one never runs.
    gate = asyncio.Event()
    started: list[str] = []

    def endpoint(name: str) -> Callable[[], Awaitable[None]]:
        async def work() -> None:
            started.append(name)
            await gate.wait()  # holds until every endpoint has started

        return work

    async def fan_out() -> None:
        scheduler.call_at(clock.now(), endpoint("a"))
        scheduler.call_at(clock.now(), endpoint("b")).cancel()
        scheduler.call_at(clock.now(), endpoint("c"))

    async def release_when_started() -> None:
        while len(started) < 2:
            await asyncio.sleep(0)
        gate.set()

    scheduler.call_at(T0 + 1, fan_out)
    await asyncio.gather(scheduler.advance(2), release_when_started())
    assert started == ["a", "c"]
