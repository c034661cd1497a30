"""Run now: `POST /v2/messages/{id}/retry` releases a waiting message at once; a schedule can be
triggered outside its cron times (route, `Emulator.trigger`)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from helpers import states, times
from qstash import QStash
from qstash_emulator import Emulator


def retry_now(emu: Emulator, message_id: str, token: str | None = None) -> httpx.Response:
    return httpx.post(
        f"{emu.url}/v2/messages/{message_id}/retry",
        headers={"Authorization": f"Bearer {token or emu.token}"},
    )


def test_a_delayed_message_is_delivered_now_without_moving_time(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    url = target("/later")
    message_id = client.message.publish(url=url, body="x", delay="2h").message_id
    emu.settle()
    assert times(emu, url) == []
    answer = retry_now(emu, message_id)
    assert (answer.status_code, answer.content) == (200, b"")
    emu.settle()
    assert [d.time for d in emu.engine.delivered] == [emu.now]  # now, not in two hours
    assert states(client, message_id)[-1] == "DELIVERED"
    emu.advance("3h")  # the old timer is gone: no second delivery
    assert len(emu.engine.delivered) == 1


def test_a_retrying_message_uses_its_scheduled_attempt_not_an_extra_one(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    url = target("/down", 500)
    message_id = client.message.publish(url=url, body="x", retries=1).message_id
    emu.settle()
    assert [d.retried for d in emu.engine.delivered] == [0]
    assert retry_now(emu, message_id).status_code == 200
    emu.settle()
    # The second attempt is the last one (retries=1): it fails into the DLQ at once.
    assert [d.retried for d in emu.engine.delivered] == [0, 1]
    assert times(emu, url) == [0.0, 0.0]
    assert states(client, message_id)[-1] == "FAILED"
    assert len(client.dlq.list().messages) == 1


def test_run_now_refuses_what_is_not_waiting(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    unknown = retry_now(emu, "msg_nope")
    assert unknown.status_code == 404 and "not found" in unknown.json()["error"]
    assert retry_now(emu, "msg_nope", token="bad").status_code == 401
    client.queue.upsert("jobs", parallelism=1)
    queued = client.message.enqueue(queue="jobs", url=target("/q", 500, 200), body="x").message_id
    emu.settle()  # the first attempt failed: it waits for its retry
    answer = retry_now(emu, queued)
    assert answer.status_code == 400 and "queue" in answer.json()["error"]
    # Held by flow control's rate (a gate, not the message's own timer) is not a delay.
    fc = {"key": "k", "rate": 1, "period": "1h"}
    client.message.publish(url=target("/first"), body="a", flow_control=fc)
    held = client.message.publish(url=target("/fc"), body="b", flow_control=fc).message_id
    emu.settle()
    answer = retry_now(emu, held)
    assert answer.status_code == 400 and "not waiting" in answer.json()["error"]
    emu.advance("2h")  # nothing was changed by the refusals: everything still runs in order
    assert states(client, queued)[-1] == "DELIVERED"
    assert states(client, held)[-1] == "DELIVERED"


def test_emulator_run_now_method(emu: Emulator, client: QStash, target: Callable[..., str]) -> None:
    url = target("/m")
    message_id = client.message.publish(url=url, body="x", delay="1d").message_id
    emu.run_now(message_id)
    emu.settle()
    assert states(client, message_id)[-1] == "DELIVERED"
    again = retry_now(emu, message_id)  # still readable by id for a while, but not waiting
    assert again.status_code == 400 and "not waiting" in again.json()["error"]


def test_trigger_fires_a_schedule_now_and_keeps_its_cron_times(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    url = target("/cron")
    schedule_id = client.schedule.create(destination=url, cron="0 * * * *", body="tick")
    emu.advance("10m")
    answer = emu.trigger(schedule_id)
    emu.settle()
    assert times(emu, url) == [0.0]
    [record] = emu.engine.delivered
    assert record.message.id == answer["messageId"]
    assert record.message.schedule_id == schedule_id
    schedule = client.schedule.get(schedule_id)
    assert schedule.last_schedule_time == int(emu.now * 1000)
    emu.advance("50m")  # the cron firing at :00 still comes
    assert times(emu, url) == [0.0, 3000.0]


def test_trigger_route_needs_a_token_and_a_known_schedule(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    url = target("/cron")
    schedule_id = client.schedule.create(destination=url, cron="0 0 1 1 *", body="b")
    client.schedule.pause(schedule_id)  # an explicit trigger fires a paused schedule too
    route = f"{emu.url}/__emulator/schedules/{schedule_id}/trigger"
    assert httpx.post(route).status_code == 401
    missing = httpx.post(
        f"{emu.url}/__emulator/schedules/nope/trigger",
        headers={"Authorization": f"Bearer {emu.token}"},
    )
    assert missing.status_code == 404 and "not found" in missing.json()["error"]
    fired = httpx.post(route, headers={"Authorization": f"Bearer {emu.token}"})
    assert fired.status_code == 200
    emu.settle()
    assert [d.message.id for d in emu.engine.delivered] == [fired.json()["messageId"]]
    assert client.schedule.get(schedule_id).paused
