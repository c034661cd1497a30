"""The collector's settings: the server's for good, a replay's only while it runs."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest
from qstash_emulator.core.clock import VirtualClock
from qstash_emulator.core.gc_tuning import YOUNG, replaying, tune_for_server
from qstash_emulator.core.scheduler import Scheduler


@pytest.fixture(autouse=True)
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_the_server_freezes_start_up_objects_and_grows_the_young_generation() -> None:
    gc.set_threshold(700, 10, 10)
    tune_for_server()
    assert gc.get_threshold() == (YOUNG, 10, 10)
    assert gc.get_freeze_count() > 0


def test_a_replay_grows_the_young_generation_and_gives_it_back_even_when_nested() -> None:
    gc.set_threshold(700, 11, 12)
    with replaying():
        assert gc.get_threshold() == (YOUNG, 11, 12)
        with replaying():
            assert gc.get_threshold() == (YOUNG, 11, 12)
        assert gc.get_threshold() == (YOUNG, 11, 12)
    assert gc.get_threshold() == (700, 11, 12)
    gc.set_threshold(50_000)  # an app's own larger setting is kept as it is
    with replaying():
        assert gc.get_threshold()[0] == 50_000
    assert gc.get_threshold()[0] == 50_000


async def test_an_advance_runs_with_the_larger_young_generation() -> None:
    gc.set_threshold(700)
    clock = VirtualClock(1_000_000.0, follow_freezegun=False)
    scheduler = Scheduler(clock)
    seen: list[int] = []

    async def work() -> None:
        seen.append(gc.get_threshold()[0])

    scheduler.call_at(clock.now() + 5, work)
    await scheduler.advance(10)
    await asyncio.sleep(0)
    assert seen == [YOUNG] and gc.get_threshold()[0] == 700
