"""Schedules through the official SDK: cron firings on the virtual clock, real deliveries."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from helpers import requests_to
from pytest_httpserver import HTTPServer
from qstash import QStash
from qstash.errors import QStashError
from qstash.schedule import ScheduleState
from qstash_emulator import Emulator
from qstash_emulator.core.clock import DEFAULT_EPOCH
from qstash_emulator.parsing.publish_headers import MessageSpec

MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0


def api(emu: Emulator, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {emu.token}", **kwargs.pop("headers", {})}
    return httpx.request(method, emu.url + path, headers=headers, **kwargs)


def deliveries(emu: Emulator, url: str) -> list[Any]:
    return [d for d in emu.engine.delivered if d.url == url]


def header_of(record: Any, name: str) -> str | None:
    return next((v for k, v in record.headers if k.lower() == name.lower()), None)


# -- create, read -----------------------------------------------------------------------------


def test_create_answers_the_id_and_get_shows_every_setting(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    url, cb, fcb = target("/hook"), target("/cb"), target("/fail")
    sid = client.schedule.create_json(
        destination=url,
        cron="*/5 * * * *",
        body={"report": "daily"},
        method="PUT",
        headers={"X-Tenant": "acme"},
        retries=2,
        retry_delay="1000 * (1 + retried)",
        callback=cb,
        failure_callback=fcb,
        delay="30s",
        timeout="20s",
        flow_control={"key": "reports", "parallelism": 2, "rate": 10, "period": "1m"},
        label="nightly",
    )
    assert sid.startswith("scd_")

    s = client.schedule.get(sid)
    assert (s.schedule_id, s.destination, s.cron) == (sid, url, "*/5 * * * *")
    assert s.created_at == int(DEFAULT_EPOCH * 1000)
    assert json.loads(s.body or "") == {"report": "daily"}
    assert s.method == "PUT"
    assert s.headers == {"X-Tenant": ["acme"], "Content-Type": ["application/json"]}
    assert (s.retries, s.delay, s.timeout) == (2, 30, 20)
    assert s.retry_delay_expression == "1000 * (1 + retried)"
    assert (s.callback, s.failure_callback) == (cb, fcb)
    assert s.caller_ip == "127.0.0.1"
    assert s.paused is False
    assert s.flow_control is not None
    assert (s.flow_control.key, s.flow_control.parallelism) == ("reports", 2)
    assert (s.flow_control.rate, s.flow_control.period) == (10, 60)
    assert s.label == "nightly"
    assert s.next_schedule_time == int((DEFAULT_EPOCH + 5 * MINUTE) * 1000)
    assert s.last_schedule_time is None and s.last_schedule_states is None
    assert [x.schedule_id for x in client.schedule.list()] == [sid]


def test_raw_shapes_follow_the_schedule_schema(emu: Emulator, target: Callable[..., str]) -> None:
    url = target("/hook")
    created = api(
        emu,
        "POST",
        f"/v2/schedules/{url}",
        headers={"Upstash-Cron": "0 * * * *", "Upstash-Label": "a,b"},
        content=b"x",
    )
    assert created.status_code == 200
    assert list(created.json()) == ["scheduleId"]
    [raw] = api(emu, "GET", "/v2/schedules").json()
    for name in ("scheduleId", "cron", "destination", "createdAt", "method", "isPaused"):
        assert name in raw  # the schema's required fields
    assert raw["callerIp"] == "127.0.0.1"
    assert raw["labels"] == ["a", "b"] and raw["label"] == "a"  # the first label
    assert raw["retries"] == 3 and raw["body"] == "x"
    assert raw["nextScheduleTime"] == int((DEFAULT_EPOCH + HOUR) * 1000)


# -- firing -----------------------------------------------------------------------------------


def test_every_five_minutes_fires_288_deliveries_a_day_at_the_cron_times(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/tick")
    sid = client.schedule.create(
        destination=url, cron="*/5 * * * *", body="tick", headers={"X-Job": "sweep"}
    )
    emu.advance("1d")

    sent = deliveries(emu, url)
    assert [d.time for d in sent] == [DEFAULT_EPOCH + 300 * i for i in range(1, 289)]
    assert all(header_of(d, "Upstash-Schedule-Id") == sid for d in sent)
    assert len({d.message.id for d in sent}) == 288  # one new message per firing
    reqs = requests_to(httpserver, "/tick")
    assert len(reqs) == 288
    assert reqs[0].get_data() == b"tick" and reqs[0].headers["X-Job"] == "sweep"
    assert reqs[-1].headers["Upstash-Schedule-Id"] == sid

    logs = client.log.list(filter={"schedule_id": sid}, count=1000).logs
    delivered = sorted(lg.time for lg in logs if lg.state.value == "DELIVERED")
    assert delivered == [int((DEFAULT_EPOCH + 300 * i) * 1000) for i in range(1, 289)]
    assert {lg.schedule_id for lg in logs} == {sid}

    s = client.schedule.get(sid)
    assert s.last_schedule_time == int((DEFAULT_EPOCH + DAY) * 1000)
    assert s.next_schedule_time == int((DEFAULT_EPOCH + DAY + 300) * 1000)
    assert s.last_schedule_states == {sent[-1].message.id: ScheduleState.SUCCESS}


def test_message_settings_apply_to_every_firing(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/late")
    client.schedule.create(destination=url, cron="0 * * * *", delay="10m", method="PATCH")
    emu.advance("3h10m")
    sent = deliveries(emu, url)
    # Each hourly firing is delivered ten minutes later, with the schedule's method.
    assert [d.time - DEFAULT_EPOCH for d in sent] == [
        HOUR + 600,
        2 * HOUR + 600,
        3 * HOUR + 600,
    ]
    assert {r.method for r in requests_to(httpserver, "/late")} == {"PATCH"}


def test_cron_tz_fires_in_the_given_zone(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    url = target("/ny")
    sid = client.schedule.create(destination=url, cron="CRON_TZ=America/New_York 0 4 * * *")
    assert client.schedule.get(sid).cron == "CRON_TZ=America/New_York 0 4 * * *"
    emu.advance("2d")
    # 04:00 in New York in January is 09:00 UTC.
    assert [d.time - DEFAULT_EPOCH for d in deliveries(emu, url)] == [9 * HOUR, DAY + 9 * HOUR]


def test_last_schedule_states_follow_the_messages(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    ok, bad = target("/ok"), target("/bad", 500)
    good_id = client.schedule.create(destination=ok, cron="* * * * *", delay="30s")
    bad_id = client.schedule.create(destination=bad, cron="* * * * *", retries=0)
    emu.advance("1m")
    [pending] = (client.schedule.get(good_id).last_schedule_states or {}).values()
    assert pending == ScheduleState.IN_PROGRESS
    emu.advance("30s")
    assert list((client.schedule.get(good_id).last_schedule_states or {}).values()) == [
        ScheduleState.SUCCESS
    ]
    assert list((client.schedule.get(bad_id).last_schedule_states or {}).values()) == [
        ScheduleState.FAIL
    ]


def test_callbacks_of_a_firing_name_the_schedule(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url, cb = target("/job"), target("/cb")
    sid = client.schedule.create(destination=url, cron="* * * * *", callback=cb)
    emu.advance("1m")
    [req] = requests_to(httpserver, "/cb")
    assert json.loads(req.get_data())["scheduleId"] == sid


# -- pause, resume, delete, replace -----------------------------------------------------------


def test_paused_schedule_fires_none_and_resume_continues_from_the_next_cron_time(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    url = target("/p")
    sid = client.schedule.create(destination=url, cron="*/10 * * * *")
    emu.advance("20m")
    assert len(deliveries(emu, url)) == 2
    client.schedule.pause(sid)
    client.schedule.pause(sid)  # pausing twice is harmless
    assert client.schedule.get(sid).paused is True
    emu.advance("3h")
    emu.run_until_idle()  # a paused schedule leaves nothing to wait for
    assert len(deliveries(emu, url)) == 2
    emu.advance("3m")  # now 3h23m
    client.schedule.resume(sid)
    s = client.schedule.get(sid)
    assert s.paused is False
    assert s.next_schedule_time == int((DEFAULT_EPOCH + 3 * HOUR + 30 * MINUTE) * 1000)
    emu.advance("20m")
    times = [d.time - DEFAULT_EPOCH for d in deliveries(emu, url)]
    assert times == [600, 1200, 3 * HOUR + 1800, 3 * HOUR + 2400]


def test_delete_stops_firings_but_not_published_messages(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    url = target("/d")
    sid = client.schedule.create(destination=url, cron="* * * * *", delay="5m")
    emu.advance("1m")  # fired once, delivery due at 6m
    client.schedule.delete(sid)
    emu.advance("1h")
    assert [d.time - DEFAULT_EPOCH for d in deliveries(emu, url)] == [360]
    assert client.schedule.list() == []
    with pytest.raises(QStashError, match="404"):
        client.schedule.get(sid)


def test_same_schedule_id_replaces_the_schedule(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/r")
    first = client.schedule.create(
        destination=url, cron="* * * * *", body="v1", schedule_id="nightly-report"
    )
    assert first == "nightly-report"
    emu.advance("2m")
    again = client.schedule.create(
        destination=url, cron="*/30 * * * *", body="v2", schedule_id="nightly-report"
    )
    assert again == "nightly-report"
    [s] = client.schedule.list()
    assert (s.cron, s.body, s.created_at) == ("*/30 * * * *", "v2", int(DEFAULT_EPOCH * 1000))
    emu.advance("1h")
    bodies = [r.get_data() for r in requests_to(httpserver, "/r")]
    assert bodies == [b"v1", b"v1", b"v2", b"v2"]  # 1m, 2m, then 30m and 60m only


def test_reset_forgets_schedules(emu: Emulator, client: QStash, target: Callable[..., str]) -> None:
    url = target("/x")
    client.schedule.create(destination=url, cron="* * * * *")
    emu.reset()
    emu.advance("10m")
    assert client.schedule.list() == [] and deliveries(emu, url) == []


# -- Upstash-Cron on a publish ----------------------------------------------------------------


def test_publish_with_upstash_cron_creates_a_schedule(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    url = target("/cronpub")
    res = api(
        emu,
        "POST",
        f"/v2/publish/{url}",
        headers={"Upstash-Cron": "0 0 * * *", "Upstash-Schedule-Id": "midnight"},
        content=b"hi",
    )
    assert res.status_code == 200 and res.json() == {"scheduleId": "midnight"}
    emu.settle()
    assert deliveries(emu, url) == []  # no one-off message
    assert client.schedule.get("midnight").destination == url
    emu.advance("1d")
    assert [d.time - DEFAULT_EPOCH for d in deliveries(emu, url)] == [DAY]


# -- URL groups and queues --------------------------------------------------------------------


def test_schedule_to_a_url_group_fires_to_every_endpoint(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    a, b = target("/a"), target("/b")
    client.url_group.upsert_endpoints(url_group="team", endpoints=[{"url": a}, {"url": b}])
    sid = client.schedule.create(destination="team", cron="*/15 * * * *")
    emu.advance("30m")
    for url in (a, b):
        sent = deliveries(emu, url)
        assert [d.time - DEFAULT_EPOCH for d in sent] == [900, 1800]
        assert all(header_of(d, "Upstash-Schedule-Id") == sid for d in sent)
    assert len(client.schedule.get(sid).last_schedule_states or {}) == 2


def test_schedule_to_a_queue_enqueues_each_firing(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    url = target("/q")
    client.queue.upsert("jobs", parallelism=1)
    sid = client.schedule.create(destination=url, cron="* * * * *", queue="jobs")
    assert client.schedule.get(sid).queue == "jobs"
    emu.advance("3m")
    sent = deliveries(emu, url)
    assert [d.time - DEFAULT_EPOCH for d in sent] == [60, 120, 180]
    assert {d.message.queue_name for d in sent} == {"jobs"}
    assert all(header_of(d, "Upstash-Schedule-Id") == sid for d in sent)


def test_a_firing_that_cannot_publish_records_the_error_and_keeps_going(
    emu: Emulator, client: QStash
) -> None:
    sid = client.schedule.create(destination="no-such-group", cron="* * * * *")
    emu.advance("2m")
    s = client.schedule.get(sid)
    assert s.error  # the last trigger's error
    assert s.next_schedule_time == int((DEFAULT_EPOCH + 3 * MINUTE) * 1000)
    assert list(emu.engine.delivered) == []


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cron",
    ["* * * *", "61 * * * *", "* * * * * *", "@hourly", "CRON_TZ=Mars/Base * * * * *", "nope"],
)
def test_invalid_cron_is_a_400_and_creates_nothing(
    emu: Emulator, client: QStash, target: Callable[..., str], cron: str
) -> None:
    url = target("/never")
    res = api(emu, "POST", f"/v2/schedules/{url}", headers={"Upstash-Cron": cron})
    assert res.status_code == 400
    assert "invalid cron" in res.json()["error"]
    res = api(emu, "POST", f"/v2/publish/{url}", headers={"Upstash-Cron": cron})
    assert res.status_code == 400
    assert client.schedule.list() == []
    emu.advance("1h")
    assert deliveries(emu, url) == []


def test_bad_create_requests_are_400_and_leave_the_existing_schedule(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    url = target("/keep")
    client.schedule.create(destination=url, cron="0 * * * *", schedule_id="keep", body="old")
    cases: list[tuple[str, dict[str, str]]] = [
        (url, {}),  # no Upstash-Cron
        (url, {"Upstash-Cron": "bad", "Upstash-Schedule-Id": "keep"}),
        (url, {"Upstash-Cron": "* * * * *", "Upstash-Schedule-Id": "has space"}),
        (url, {"Upstash-Cron": "* * * * *", "Upstash-Retries": "x", "Upstash-Schedule-Id": "keep"}),
        ("not a url", {"Upstash-Cron": "* * * * *"}),
        (url, {"Upstash-Cron": "* * * * *", "Upstash-Queue-Name": "bad name!"}),
        (
            url,
            {
                "Upstash-Cron": "* * * * *",
                "Upstash-Flow-Control-Key": "k",
                "Upstash-Flow-Control-Value": "rate=fast",
            },
        ),
    ]
    for destination, headers in cases:
        res = api(emu, "POST", f"/v2/schedules/{destination}", headers=headers, content=b"new")
        assert res.status_code == 400, (destination, headers, res.text)
        assert res.json()["error"]
    [s] = client.schedule.list()
    assert (s.schedule_id, s.cron, s.body) == ("keep", "0 * * * *", "old")
    emu.advance("1h")
    assert [d.time - DEFAULT_EPOCH for d in deliveries(emu, url)] == [HOUR]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/schedules/scd_missing"),
        ("DELETE", "/v2/schedules/scd_missing"),
        ("POST", "/v2/schedules/scd_missing/pause"),
        ("PATCH", "/v2/schedules/scd_missing/pause"),
        ("POST", "/v2/schedules/scd_missing/resume"),
        ("PATCH", "/v2/schedules/scd_missing/resume"),
    ],
)
def test_unknown_schedule_ids_are_404(emu: Emulator, method: str, path: str) -> None:
    res = api(emu, method, path)
    assert res.status_code == 404
    assert res.json() == {"error": "schedule scd_missing not found"}


def test_sdk_raises_for_unknown_schedule_ids(client: QStash) -> None:
    for call in (client.schedule.get, client.schedule.delete, client.schedule.pause):
        with pytest.raises(QStashError, match="404"):
            call("scd_missing")


def test_schedule_limit_of_the_plan_is_a_412(emu: Emulator, target: Callable[..., str]) -> None:
    url = target("/many")
    limit = emu.user.quota.max_schedules
    spec = MessageSpec(cron="0 0 1 1 *")

    async def fill() -> None:
        for i in range(limit):
            spec.schedule_id = f"s{i}"
            emu.schedules.create(emu.user, url, spec, b"", caller_ip="127.0.0.1")

    emu.call(fill())
    res = api(emu, "POST", f"/v2/schedules/{url}", headers={"Upstash-Cron": "* * * * *"})
    assert res.status_code == 412
    assert "maximum number of schedules" in res.json()["error"]
    assert len(emu.schedules.list(emu.user)) == limit
    # Replacing an existing schedule is still allowed at the limit.
    res = api(
        emu,
        "POST",
        f"/v2/schedules/{url}",
        headers={"Upstash-Cron": "* * * * *", "Upstash-Schedule-Id": "s0"},
    )
    assert res.status_code == 200


def test_a_schedule_to_the_llm_api_is_checked_at_creation(emu: Emulator) -> None:
    auth = {"Authorization": f"Bearer {emu.token}", "Upstash-Cron": "* * * * *"}
    body = json.dumps(
        {
            "model": "meta-llama/Meta-Llama-3-8B-Instruct",
            "messages": [{"role": "user", "content": "hi"}],
        }
    )
    res = httpx.post(f"{emu.url}/v2/schedules/api/llm", headers=auth, content=body)
    assert res.status_code == 400 and "callback" in res.json()["error"].lower()
    assert httpx.get(f"{emu.url}/v2/schedules", headers=auth).json() == []
