"""/v2/schedules: create (or replace), list, get, delete, pause, resume.

Also Upstash-Cron on a publish (v1 or v2), which creates a schedule instead of a one-off
message.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..core.clock import ms
from ..parsing.publish_headers import MessageSpec
from ..resources.schedules import Schedule, Schedules
from .common import backend, engine, json_response, user
from .publish import destination_of, parse_spec
from .render import (
    add_labels_and_flow_control,
    callback_headers,
    redact_body,
    redact_headers,
    text_or_base64,
)

__all__ = ["setup"]


def _schedule_json(schedule: Schedule) -> dict[str, Any]:
    spec = schedule.spec
    redact = spec.redact
    out: dict[str, Any] = {
        "scheduleId": schedule.id,
        "cron": schedule.cron.expr.strip(),
        "destination": schedule.destination,
        "createdAt": ms(schedule.created_at),
        "method": spec.method,
        "header": redact_headers(spec.headers, redact),
        "retries": spec.retries,
        "callerIp": schedule.caller_ip,
        "callerIP": schedule.caller_ip,  # the spelling the SDKs read
        "isPaused": schedule.paused,
    }
    out.update(text_or_base64(redact_body(schedule.body, redact), "body", "bodyBase64"))
    callback, failure = spec.callback, spec.failure_callback
    optional: dict[str, Any] = {
        "queueName": spec.queue_name,
        "delay": int(spec.delay) if spec.delay else None,
        "timeout": int(spec.timeout) if spec.timeout else None,
        "callback": callback.url if callback else None,
        "callbackHeader": callback_headers(callback, redact),
        "failureCallback": failure.url if failure else None,
        "failureCallbackHeader": callback_headers(failure, redact),
        "retryDelayExpression": spec.retry_delay.source if spec.retry_delay else None,
        "lastScheduleTime": ms(schedule.last_time) if schedule.last_time is not None else None,
        "nextScheduleTime": ms(schedule.next_time) if schedule.next_time is not None else None,
        "error": schedule.error,
    }
    out.update({k: v for k, v in optional.items() if v is not None})
    add_labels_and_flow_control(out, spec.labels, spec.flow_control)
    if schedule.last_messages:
        out["lastScheduleStates"] = schedule.last_states()
    return out


def _schedules(request: web.Request) -> Schedules:
    return backend(request).schedules


def _store_schedule(
    request: web.Request, destination: str, spec: MessageSpec, body: bytes
) -> web.Response:
    schedule = _schedules(request).create(
        user(request), destination, spec, body, caller_ip=request.remote or "127.0.0.1"
    )
    return json_response({"scheduleId": schedule.id})


async def _create(request: web.Request) -> web.Response:
    destination = destination_of(request)
    spec = parse_spec(request)
    body = await request.read()
    engine(request).check_body(user(request), body)
    return _store_schedule(request, destination, spec, body)


async def _list_schedules(request: web.Request) -> web.Response:
    return json_response([_schedule_json(s) for s in _schedules(request).list(user(request))])


async def _get_schedule(request: web.Request) -> web.Response:
    schedule = _schedules(request).get(user(request), request.match_info["scheduleId"])
    return json_response(_schedule_json(schedule))


async def _delete_schedule(request: web.Request) -> web.Response:
    _schedules(request).delete(user(request), request.match_info["scheduleId"])
    return web.Response(status=200)


async def _pause(request: web.Request) -> web.Response:
    _schedules(request).pause(user(request), request.match_info["scheduleId"])
    return web.Response(status=200)


async def _resume(request: web.Request) -> web.Response:
    _schedules(request).resume(user(request), request.match_info["scheduleId"])
    return web.Response(status=200)


def setup(app: web.Application) -> None:
    """Add the /v2/schedules routes to `app`."""
    one = "/v2/schedules/{scheduleId:[^/]+}"
    app.router.add_get("/v2/schedules", _list_schedules)
    # The API reference says POST, the Python SDK sends PATCH: accept both.
    for method in ("POST", "PATCH"):
        app.router.add_route(method, one + "/pause", _pause)
        app.router.add_route(method, one + "/resume", _resume)
    app.router.add_get(one, _get_schedule)
    app.router.add_delete(one, _delete_schedule)
    # Registered last: the destination may itself contain slashes.
    app.router.add_post("/v2/schedules/{destination:.+}", _create)
