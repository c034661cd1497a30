"""The dashboard's actions: POST /__dashboard/api/..., checked against the dashboard key.

Each one is the same engine or resource call the REST API makes for the same thing.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..core.errors import ApiError, bad_request
from ..http.common import json_response, read_json
from ..parsing.durations import parse_duration
from . import access
from .pages import current_user
from .routes import compile_table
from .security import check_action
from .views import iso

__all__ = ["ADVANCE_STEPS", "TABLE"]

# The time page's buttons: how far each one moves a virtual clock.
ADVANCE_STEPS = {"1m": 60.0, "1h": 3600.0, "1d": 86400.0}
MAX_JUMP = 100 * 366 * 86400.0  # further, timestamps leave what dates can show


def _done(message: str, **extra: Any) -> web.Response:
    return json_response({"ok": True, "message": message, **extra})


async def _ids(request: web.Request, name: str) -> list[str]:
    data = await read_json(request)
    ids = data.get(name) if isinstance(data, dict) else None
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise bad_request(f'request body must be {{"{name}": ["...", ...]}}')
    return ids


async def cancel_message(request: web.Request) -> web.Response:
    check_action(request)
    message_id = request.match_info["messageId"]
    access.engine(request).cancel(current_user(request), message_id)
    return _done(f"cancelled {message_id}")


async def dlq_retry(request: web.Request) -> web.Response:
    check_action(request)
    eng, who = access.engine(request), current_user(request)
    ids = await _ids(request, "dlqIds")
    entries = [eng.dlq_entry(who, i) for i in ids]  # all exist, or nothing is retried
    answers = [eng.dlq_retry(who, entry, None) for entry in entries]
    return _done(f"retried {len(answers)} message(s)", responses=answers)


async def dlq_delete(request: web.Request) -> web.Response:
    check_action(request)
    eng, who = access.engine(request), current_user(request)
    ids = await _ids(request, "dlqIds")
    for dlq_id in ids:
        eng.dlq_entry(who, dlq_id)  # 404 before anything is deleted
    return _done(f"deleted {eng.dlq_delete(who, ids)} DLQ entr(ies)")


async def schedule_action(request: web.Request) -> web.Response:
    check_action(request)
    schedules, who = access.schedules(request), current_user(request)
    schedule_id, verb = request.match_info["scheduleId"], request.match_info["verb"]
    if verb == "pause":
        schedules.pause(who, schedule_id)
    elif verb == "resume":
        schedules.resume(who, schedule_id)
    elif verb == "trigger":
        schedules.trigger(who, schedule_id)  # a failing publish answers its error
        control = access.control(request)
        if control is not None:
            control.note(f"schedule {schedule_id} triggered (dashboard)")
    elif verb == "delete":
        schedules.delete(who, schedule_id)
    else:
        raise ApiError(404, f"unknown schedule action {verb!r}")
    return _done(f"{verb}: schedule {schedule_id}")


async def queue_action(request: web.Request) -> web.Response:
    check_action(request)
    queues, who = access.queues(request), current_user(request)
    name, verb = request.match_info["name"], request.match_info["verb"]
    if verb == "pause":
        queues.pause(who, name)
    elif verb == "resume":
        queues.resume(who, name)
    else:
        raise ApiError(404, f"unknown queue action {verb!r}")
    return _done(f"{verb}: queue {name}")


async def flow_control_action(request: web.Request) -> web.Response:
    check_action(request)
    keys, who = access.flow_control(request), current_user(request)
    key, verb = request.match_info["key"], request.match_info["verb"]
    if verb == "pause":
        keys.pause(who, key)
    elif verb == "resume":
        keys.resume(who, key)
    else:
        raise ApiError(404, f"unknown flow-control action {verb!r}")
    return _done(f"{verb}: flow-control key {key}")


async def advance(request: web.Request) -> web.Response:
    """Move a virtual clock: 1m, 1h, 1d, a duration, or `next` (to the next due item)."""
    check_action(request)
    eng = access.engine(request)
    if not eng.clock.virtual:
        raise bad_request("the emulator runs on the real clock: time cannot be advanced")
    data = await read_json(request)
    by = data.get("by") if isinstance(data, dict) else None
    if not isinstance(by, str):
        raise bad_request('request body must be {"by": "1m" | "1h" | "1d" | "next" | duration}')
    if by == "next":
        due = eng.scheduler.next_due()
        if due is None:
            raise bad_request("nothing is due: no delayed message, retry or schedule is waiting")
        seconds = max(0.0, due - eng.clock.now())
    else:
        try:
            seconds = ADVANCE_STEPS.get(by) or parse_duration(by)
        except ValueError as exc:
            raise bad_request(f"invalid duration {by!r}: {exc}") from None
        if not 0 < seconds <= MAX_JUMP:
            raise bad_request("advance by a positive duration of at most 100 years")
    # As POST /__emulator/advance does: one time operation at a time, noted in the request log.
    control = access.control(request)
    if control is None:
        await eng.scheduler.advance(seconds)
    else:
        async with control.lock:
            await control.emulator.aadvance(seconds)
        control.note(f"advanced {seconds:g}s to {control.clock_json()['time']} (dashboard)")
    now = eng.clock.now()
    return _done(f"advanced to {iso(now)}", now=round(now * 1000))


async def cancel_run(request: web.Request) -> web.Response:
    """Cancel a workflow run: `DELETE /v2/workflows/runs/{runId}?cancel=true`'s call."""
    check_action(request)
    run_id = request.match_info["runId"]
    # 404 for an unknown run, 400 for one that is over (nothing is changed either way).
    access.workflows(request).finish(current_user(request), run_id, cancel=True)
    _note(request, f"workflow run {run_id} cancelled (dashboard)")
    return _done(f"cancelled workflow run {run_id}")


async def notify(request: web.Request) -> web.Response:
    """Notify an event: `POST /v2/notify/{eventId}`'s call.

    With a run id, `/v2/notify/{runId}/{eventId}`'s: only that run's waiter, and kept for the
    run's next wait when it does not wait yet.
    """
    check_action(request)
    data = await read_json(request)
    if not isinstance(data, dict):
        raise bad_request('request body must be {"eventId": "...", "data": "...", "runId": "..."}')
    event_id, payload, run_id = data.get("eventId"), data.get("data", ""), data.get("runId")
    if not isinstance(event_id, str) or not event_id.strip():
        raise bad_request("eventId must be a non-empty string")
    if not isinstance(payload, str):
        raise bad_request("data must be a string (the event's body)")
    if run_id is not None and (not isinstance(run_id, str) or not run_id.strip()):
        raise bad_request("runId must be a workflow run id")
    runs, who = access.workflows(request), current_user(request)
    run = runs.get(who, run_id) if run_id is not None else None  # 404 for an unknown run
    answers = runs.events.notify(who, event_id, payload.encode(), run_id)
    if answers:
        text = f"notified {event_id}: {len(answers)} waiter(s) resumed"
    elif run is not None and run.active:
        text = f"run {run.id} does not wait for {event_id} yet: kept for its next wait"
    else:
        text = f"nobody waits for {event_id}: the event is lost"
    _note(request, text + " (dashboard)")
    return _done(text, messageIds=[a["messageId"] for a in answers])


def _note(request: web.Request, text: str) -> None:
    control = access.control(request)
    if control is not None:
        control.note(text)


# Paths under /__dashboard/api.
TABLE = compile_table(
    [
        ("/messages/{messageId}/cancel", cancel_message),
        ("/dlq/retry", dlq_retry),
        ("/dlq/delete", dlq_delete),
        ("/schedules/{scheduleId}/{verb}", schedule_action),
        ("/queues/{name}/{verb}", queue_action),
        ("/flow-control/{key}/{verb}", flow_control_action),
        ("/time/advance", advance),
        ("/runs/{runId}/cancel", cancel_run),
        ("/workflows/notify", notify),
    ]
)
