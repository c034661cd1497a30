"""Time in tests: advance, run_until_idle, auto-advance, the real clock, and freezegun."""

from __future__ import annotations

import datetime
import time

import pytest
from freezegun import freeze_time
from pytest_qstash import QStashHarness
from qstash import QStash
from qstash_emulator import Emulator, VirtualClock
from qstash_emulator.core.clock import DEFAULT_EPOCH


def test_advance_delivers_what_falls_due(qstash: QStashHarness, qstash_client: QStash) -> None:
    hook = qstash.capture()
    qstash_client.message.publish(url=hook.url, body="later", delay="90s")
    qstash.advance("89s")
    qstash.assert_not_delivered(hook)
    qstash.advance(1)
    [d] = qstash.assert_delivered(hook)
    assert d.time == DEFAULT_EPOCH + 90
    assert qstash.now == DEFAULT_EPOCH + 90


def test_run_until_idle_runs_retries_at_their_backoff(
    qstash: QStashHarness, qstash_client: QStash
) -> None:
    hook = qstash.capture(status=500)
    qstash_client.message.publish(url=hook.url, body="x", retries=2)
    qstash.run_until_idle()
    times = [round(d.time - qstash.started, 2) for d in qstash.deliveries(hook)]
    assert times == [0.0, 12.18, 160.6]  # e^2.5, then + e^5 (QStash's default backoff)


def test_without_auto_advance_waiting_does_not_move_time(
    qstash: QStashHarness, qstash_client: QStash
) -> None:
    hook = qstash.capture()
    qstash_client.message.publish(url=hook.url, body="x", delay="1h")
    with pytest.raises(AssertionError, match=r"not delivered yet \(1\)"):
        qstash.wait_for(hook)
    assert qstash.now == qstash.started


@pytest.mark.qstash(auto_advance=True)
def test_auto_advance_skips_idle_time_while_waiting(
    qstash: QStashHarness, qstash_client: QStash
) -> None:
    hook = qstash.capture(sequence=[500, 500])
    qstash_client.message.publish(url=hook.url, body="x", retries=3, delay="1d")
    [ok] = qstash.wait_for(hook, status=200)
    assert ok.retried == 2
    assert round(ok.time - qstash.started, 1) == 86400 + 160.6
    # assert_delivered waits the same way.
    qstash_client.message.publish(url=hook.url, body="y", delay="2h")
    qstash.assert_delivered(hook, body="y")
    assert qstash.now >= ok.time + 7200


@pytest.mark.qstash(auto_advance=True)
def test_auto_advance_gives_up_when_nothing_is_due(qstash: QStashHarness) -> None:
    with pytest.raises(AssertionError, match="wait_for: expected at least 1 delivery, found 0"):
        qstash.wait_for(qstash.capture(), timeout="1h")


def test_auto_advance_can_be_switched_on_in_a_test(
    qstash: QStashHarness, qstash_client: QStash
) -> None:
    hook = qstash.capture()
    qstash_client.message.publish(url=hook.url, body="x", delay="10m")
    qstash.auto_advance = True
    qstash.wait_for(hook)
    assert qstash.now == qstash.started + 600


@pytest.mark.qstash(real_time=True)
def test_real_time_clock(qstash: QStashHarness, qstash_client: QStash) -> None:
    assert not qstash.emulator.clock.virtual
    hook = qstash.capture()
    before = time.time()
    qstash_client.message.publish(url=hook.url, body="now")
    [d] = qstash.wait_for(hook, timeout=10)
    assert before - 1 <= d.time <= time.time() + 1
    with pytest.raises(RuntimeError, match="virtual clock"):
        qstash.advance("1s")


# -- freezegun ------------------------------------------------------------------------------


def _app_schedules_reminder(client: QStash, url: str, in_seconds: int) -> None:
    """An app that computes an absolute time from time.time() (frozen in the test)."""
    client.message.publish(url=url, body="reminder", not_before=int(time.time()) + in_seconds)


def test_freezegun_tick_delivers_what_the_app_scheduled(
    qstash: QStashHarness, qstash_client: QStash
) -> None:
    hook = qstash.capture()
    noon = datetime.datetime(2030, 6, 1, 12, tzinfo=datetime.timezone.utc).timestamp()
    with freeze_time("2030-06-01 12:00:00") as frozen:
        _app_schedules_reminder(qstash_client, hook.url, 3600)
        assert qstash.now == noon  # the emulator's clock follows the frozen time
        frozen.tick(3599)
        qstash.assert_not_delivered(hook)
        frozen.tick(2)
        [d] = qstash.assert_delivered(hook)
        assert d.time == noon + 3600  # at its own due time, though the test jumped past it
        assert qstash.now == noon + 3601
        assert d.signed  # stamped with the frozen time the app's Receiver checks against


def test_freezegun_move_to_delivers(qstash: QStashHarness, qstash_client: QStash) -> None:
    hook = qstash.capture()
    with freeze_time("2020-01-01") as frozen:  # before the emulator's own epoch
        _app_schedules_reminder(qstash_client, hook.url, 86400)
        frozen.move_to("2020-01-01 23:59:59")
        qstash.assert_not_delivered(hook)
        frozen.move_to("2020-01-02 00:00:00")
        qstash.assert_delivered(hook, body="reminder")


def test_emulator_advance_moves_frozen_time(qstash: QStashHarness, qstash_client: QStash) -> None:
    hook = qstash.capture()
    with freeze_time("2030-01-01"):
        start = time.time()
        _app_schedules_reminder(qstash_client, hook.url, 600)
        qstash.advance("10m")
        assert time.time() == start + 600  # the app's clock moved with the emulator's
        qstash.assert_delivered(hook)
        assert datetime.datetime.now() == datetime.datetime(2030, 1, 1, 0, 10)


def test_freezegun_decorator_and_receiver(qstash: QStashHarness, qstash_client: QStash) -> None:
    @freeze_time("2031-02-03 04:05:06")
    def scenario() -> None:
        hook = qstash.capture()
        qstash_client.message.publish(url=hook.url, body="x")
        [request] = hook.requests
        signature = request.header("Upstash-Signature")
        assert signature is not None
        # The official Receiver checks nbf/exp against the frozen clock: it must pass.
        qstash.receiver().verify(signature=signature, body="x", url=hook.url)
        assert (
            request.time
            == datetime.datetime(2031, 2, 3, 4, 5, 6, tzinfo=datetime.timezone.utc).timestamp()
        )

    scenario()


def test_clock_without_freezegun_follow() -> None:
    clock = VirtualClock(100.0, follow_freezegun=False)
    with freeze_time("2030-01-01"):
        assert clock.now() == 100.0
        clock.set(200.0)
        assert clock.now() == 200.0
        assert (
            time.time() == datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc).timestamp()
        )


def test_step_tick_freeze_is_read_without_ticking() -> None:
    clock = VirtualClock(0.0)
    with freeze_time("2030-01-01", auto_tick_seconds=5):
        first = clock.now()
        assert clock.now() == first  # reading the emulator's clock does not tick freezegun
        time.time()  # the app's read does
        assert clock.now() == first + 5


def test_emulator_loop_keeps_real_timers_under_freeze() -> None:
    # The emulator's own loop must not see a frozen monotonic clock (its I/O timeouts).
    with Emulator() as emu, freeze_time("2030-01-01"):
        loop = emu._loop
        assert loop is not None
        a = loop.time()
        assert a != time.monotonic()
        assert emu.call(_loop_time()) >= a


async def _loop_time() -> float:
    import asyncio

    return asyncio.get_running_loop().time()
