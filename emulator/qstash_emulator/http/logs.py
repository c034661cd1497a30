"""GET /v2/logs and the older /v2/events that the SDKs call."""

from __future__ import annotations

from aiohttp import web

from .common import engine, json_response, user
from .filters import count_param, message_filter, page, state_matches
from .render import log_json

__all__ = ["setup"]


def _log_page(request: web.Request, field: str) -> web.Response:
    query = request.query
    keep = message_filter(query)
    wanted = query.get("state")
    entries = [
        e
        for e in engine(request).logs(user(request))
        if state_matches(wanted, e.state) and keep(e.message, e.time)
    ]
    chunk, cursor = page(
        entries, lambda e: e.key, query.get("cursor"), count_param(query, 100, 1000)
    )
    body: dict[str, object] = {field: [log_json(e) for e in chunk]}
    if cursor:
        body["cursor"] = cursor
    return json_response(body)


async def _logs(request: web.Request) -> web.Response:
    return _log_page(request, "logs")


async def _events(request: web.Request) -> web.Response:
    return _log_page(request, "events")


def setup(app: web.Application) -> None:
    """Add GET /v2/logs and GET /v2/events to `app`."""
    app.router.add_get("/v2/logs", _logs)
    app.router.add_get("/v2/events", _events)
