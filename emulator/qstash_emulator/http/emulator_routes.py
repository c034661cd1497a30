"""The emulator's own control routes under /__emulator/, for tests in any language.

They drive a standalone server (Temporal's time-skipping test server is the model): read the
clock, advance it, run until idle, reset, trigger a schedule now. Each needs a user's QStash
token as Bearer.

    GET  /__emulator/clock                          {"now": ms, "time": iso, "virtual": bool}
    POST /__emulator/advance?by=1h                  (or JSON {"by": "1h"} / {"seconds": 3600})
    POST /__emulator/run-until-idle[?limit=30d]
    POST /__emulator/settle                         wait for work due now, time unmoved
    POST /__emulator/reset[?seed=N]                 fresh state (seeded state re-applied)
    POST /__emulator/schedules/{scheduleId}/trigger the publish answer of the firing
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..core.clock import ms
from ..core.errors import ApiError, bad_request
from ..parsing.durations import DurationError, parse_duration
from .common import authenticate, json_response, read_json

if TYPE_CHECKING:
    from ..emulator import Emulator

__all__ = ["CONTROL", "PREFIX", "EmulatorControl", "install"]

PREFIX = "/__emulator"
MAX_JUMP = 100 * 366 * 86400.0  # further, timestamps leave what dates can show


class EmulatorControl:
    """What the routes act on: the emulator, and notes for the request log.

    The dev server re-applies its options and seeded state in a reset hook
    (`Emulator.add_reset_hook`).
    """

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.notes: list[Callable[[str], None]] = []
        self._lock: asyncio.Lock | None = None

    @property
    def lock(self) -> asyncio.Lock:
        """One time operation at a time: an advance and a reset must not interleave."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    def note(self, text: str) -> None:
        """Tell the request log (if any) what the emulator did."""
        for note in self.notes:
            note(text)

    def clock_json(self) -> dict[str, Any]:
        """The clock as the routes answer it."""
        now = self.emulator.clock.now()
        iso = datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="milliseconds")
        return {
            "now": ms(now),
            "time": iso.replace("+00:00", "Z"),
            "virtual": self.emulator.clock.virtual,
        }

    async def reset(self, seed: int | None = None) -> None:
        """Reset the emulator (its reset hooks re-apply the dev server's setup)."""
        await self.emulator.areset(seed)


CONTROL = web.AppKey("emulator_control", EmulatorControl)


def _control(request: web.Request) -> EmulatorControl:
    authenticate(request)
    return request.app[CONTROL]


async def _param(request: web.Request, name: str) -> Any:
    """A parameter from the query string or a JSON object body."""
    if name in request.query:
        return request.query[name]
    body = await read_json(request)
    if body is not None and not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    return None if body is None else body.get(name)


def _duration(value: Any, name: str) -> float:
    if isinstance(value, bool) or value is None:
        raise bad_request(f"{name} is required: a duration such as 1h30m, or seconds")
    try:
        seconds = float(value) if isinstance(value, (int, float)) else parse_duration(str(value))
    except (DurationError, ValueError):
        raise bad_request(f"invalid {name}: {value!r}, want a duration such as 1h30m") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise bad_request(f"invalid {name}: {value!r}, time does not run backwards")
    if seconds > MAX_JUMP:
        raise bad_request(f"invalid {name}: {value!r}, at most 100 years at a time")
    return seconds


def _virtual(control: EmulatorControl) -> None:
    if not control.emulator.clock.virtual:
        raise bad_request(
            "the clock is real: time can only be moved on a virtual clock "
            "(start the server with --clock virtual)"
        )


async def clock(request: web.Request) -> web.Response:
    """GET /__emulator/clock."""
    return json_response(_control(request).clock_json())


async def advance(request: web.Request) -> web.Response:
    """POST /__emulator/advance?by=DURATION."""
    control = _control(request)
    _virtual(control)
    by = await _param(request, "by")
    if by is None:
        by = await _param(request, "seconds")
    seconds = _duration(by, "by")
    async with control.lock:
        await control.emulator.aadvance(seconds)
    control.note(f"advanced {seconds:g}s to {control.clock_json()['time']}")
    return json_response(control.clock_json())


async def run_until_idle(request: web.Request) -> web.Response:
    """POST /__emulator/run-until-idle[?limit=DURATION]."""
    control = _control(request)
    _virtual(control)
    limit = await _param(request, "limit")
    seconds = 366 * 86400.0 if limit is None else _duration(limit, "limit")
    async with control.lock:
        await control.emulator.arun_until_idle(seconds)
    control.note(f"ran until idle, now {control.clock_json()['time']}")
    return json_response(control.clock_json())


async def settle(request: web.Request) -> web.Response:
    """POST /__emulator/settle."""
    control = _control(request)
    async with control.lock:
        await control.emulator.asettle()
    return json_response(control.clock_json())


async def reset(request: web.Request) -> web.Response:
    """POST /__emulator/reset[?seed=N]."""
    control = _control(request)
    seed = await _param(request, "seed")
    if seed is not None:
        try:
            seed = int(seed)
        except (TypeError, ValueError):
            raise bad_request(f"invalid seed: {seed!r}, want an integer") from None
    async with control.lock:
        await control.reset(seed)
    control.note("state reset")
    return json_response(control.clock_json())


async def trigger(request: web.Request) -> web.Response:
    """POST /__emulator/schedules/{scheduleId}/trigger."""
    control = _control(request)
    who = authenticate(request)
    schedule_id = request.match_info["scheduleId"]
    result = control.emulator.schedules.trigger(who, schedule_id)
    control.note(f"schedule {schedule_id} triggered")
    return json_response(result)


async def unknown(request: web.Request) -> web.Response:
    """Any other /__emulator/ path: 404 in the API's error shape."""
    authenticate(request)
    raise ApiError(404, f"no emulator route {request.method} {request.path}")


def install(app: web.Application, emulator: Emulator) -> EmulatorControl:
    """Add the routes to `app`; the control object they act on."""
    control = app[CONTROL] = EmulatorControl(emulator)
    app.router.add_get(PREFIX + "/clock", clock)
    app.router.add_post(PREFIX + "/advance", advance)
    app.router.add_post(PREFIX + "/run-until-idle", run_until_idle)
    app.router.add_post(PREFIX + "/settle", settle)
    app.router.add_post(PREFIX + "/reset", reset)
    app.router.add_post(PREFIX + "/schedules/{scheduleId}/trigger", trigger)
    app.router.add_route("*", PREFIX + "/{tail:.*}", unknown)
    return control
