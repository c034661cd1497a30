"""/v2/flowControl (list, get, pause, resume, pin, unpin, resetRate) and /v2/globalParallelism."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..core.errors import bad_request
from ..resources.flow_control import FlowControl, KeyState
from .common import backend, json_response, user
from .filters import int_param

__all__ = ["setup"]


def _key_json(st: KeyState) -> dict[str, Any]:
    out: dict[str, Any] = {
        "flowControlKey": st.key,
        "waitListSize": len(st.waiting),
        "parallelismCount": len(st.active),
        "rateCount": st.rate_count,
        "isPaused": st.paused,
        "isPinnedParallelism": st.pinned_parallelism,
        "isPinnedRate": st.pinned_rate,
    }
    if st.parallelism is not None:
        out["parallelismMax"] = st.parallelism
    if st.rate is not None:
        out["rateMax"] = st.rate
    out["ratePeriod"] = max(1, int(st.period))  # seconds; one by default, as the docs say
    if st.period_start is not None:
        out["ratePeriodStart"] = int(st.period_start)  # unix seconds, as the reference says
    return out


def _fc(request: web.Request) -> FlowControl:
    return backend(request).flow_control


def _key(request: web.Request) -> str:
    return request.match_info["flowControlKey"]


def _flag(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "false").strip().lower()
    if raw not in ("true", "false"):
        raise bad_request(f"invalid {name}: {raw!r}, want true or false")
    return raw == "true"


async def _list_keys(request: web.Request) -> web.Response:
    return json_response([_key_json(st) for st in _fc(request).list(user(request))])


async def _get_key(request: web.Request) -> web.Response:
    return json_response(_key_json(_fc(request).get(user(request), _key(request))))


async def _pause(request: web.Request) -> web.Response:
    _fc(request).pause(user(request), _key(request))
    return web.Response(status=200)


async def _resume(request: web.Request) -> web.Response:
    _fc(request).resume(user(request), _key(request))
    return web.Response(status=200)


async def _pin(request: web.Request) -> web.Response:
    query = request.query
    period = int_param(query, "period")
    _fc(request).pin(
        user(request),
        _key(request),
        parallelism=int_param(query, "parallelism"),
        rate=int_param(query, "rate"),
        period=float(period) if period is not None else None,
    )
    return web.Response(status=200)


async def _unpin(request: web.Request) -> web.Response:
    parallelism, rate = _flag(request, "parallelism"), _flag(request, "rate")
    _fc(request).unpin(user(request), _key(request), parallelism=parallelism, rate=rate)
    return web.Response(status=200)


async def _reset_rate(request: web.Request) -> web.Response:
    _fc(request).reset_rate(user(request), _key(request))
    return web.Response(status=200)


async def _global_parallelism(request: web.Request) -> web.Response:
    maximum, count = _fc(request).global_parallelism(user(request))
    return json_response({"parallelismMax": maximum, "parallelismCount": count})


def setup(app: web.Application) -> None:
    """Add the /v2/flowControl and /v2/globalParallelism routes to `app`."""
    one = "/v2/flowControl/{flowControlKey:[^/]+}"
    app.router.add_get("/v2/flowControl", _list_keys)
    app.router.add_get(one, _get_key)
    app.router.add_post(one + "/pause", _pause)
    app.router.add_post(one + "/resume", _resume)
    app.router.add_post(one + "/pin", _pin)
    app.router.add_post(one + "/unpin", _unpin)
    app.router.add_post(one + "/resetRate", _reset_rate)
    app.router.add_get("/v2/globalParallelism", _global_parallelism)
