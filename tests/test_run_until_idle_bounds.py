"""run_until_idle never loops forever: past its horizon or step limit it says what kept it busy
(issue 11, item 2)."""

from __future__ import annotations

import pytest
from qstash import QStash
from qstash_emulator import Emulator, NotIdleError
from qstash_emulator.core.clock import DEFAULT_EPOCH


def test_an_active_cron_schedule_stops_run_until_idle_with_its_id(
    emu: Emulator, client: QStash
) -> None:
    hook = f"{emu.url}/__capture/cron"
    sid = client.schedule.create(destination=hook, cron="* * * * *")
    with pytest.raises(NotIdleError) as caught:
        emu.run_until_idle(max_steps=50)
    text = str(caught.value)
    assert f"schedules keep firing: {sid}" in text
    assert "advance()" in text
    assert f"schedule {sid} (50x)" in text
    # It stopped where it said: 50 firings a minute apart, not a year of them.
    assert emu.now == DEFAULT_EPOCH + 50 * 60


def test_the_default_step_limit_bounds_a_busy_schedule(emu: Emulator, client: QStash) -> None:
    sid = client.schedule.create(destination=f"{emu.url}/__capture/c", cron="* * * * *")
    with pytest.raises(NotIdleError, match=sid):
        emu.run_until_idle()
    assert emu.now == DEFAULT_EPOCH + 1000 * 60


def test_the_virtual_horizon_bounds_a_rare_schedule(emu: Emulator, client: QStash) -> None:
    sid = client.schedule.create(destination=f"{emu.url}/__capture/c", cron="0 0 1 * *")
    with pytest.raises(NotIdleError, match=r"after 3\.1536e\+07 s of virtual time") as caught:
        emu.run_until_idle(limit="365d")
    assert sid in str(caught.value)


def test_without_schedules_it_still_runs_to_idle(emu: Emulator, client: QStash) -> None:
    hook = f"{emu.url}/__capture/r"
    emu.faults.add(hook, fail_times=3)
    client.message.publish(url=hook, body="x", retries=3)
    emu.run_until_idle()  # four attempts, then nothing is due
    assert len([d for d in emu.engine.delivered if d.url == hook]) == 4


def test_a_paused_schedule_lets_it_finish(emu: Emulator, client: QStash) -> None:
    sid = client.schedule.create(destination=f"{emu.url}/__capture/c", cron="* * * * *")
    client.schedule.pause(sid)
    emu.run_until_idle()


def test_the_http_route_answers_409_naming_the_schedule(emu: Emulator, client: QStash) -> None:
    import httpx

    sid = client.schedule.create(destination=f"{emu.url}/__capture/c", cron="0 * * * *")
    res = httpx.post(
        f"{emu.url}/__emulator/run-until-idle?limit=30d",
        headers={"Authorization": f"Bearer {emu.token}"},
        timeout=60,
    )
    assert res.status_code == 409
    assert f"schedules keep firing: {sid}" in res.json()["error"]
