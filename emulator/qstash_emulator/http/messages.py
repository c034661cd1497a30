"""/v2/messages: get, cancel, bulk cancel."""

from __future__ import annotations

from aiohttp import web

from .common import engine, json_response, read_json, user
from .filters import int_param, message_filter, values
from .render import message_json

__all__ = ["setup"]


async def _get_message(request: web.Request) -> web.Response:
    message = engine(request).get_message(user(request), request.match_info["messageId"])
    return json_response(message_json(message))


async def _cancel(request: web.Request) -> web.Response:
    engine(request).cancel(user(request), request.match_info["messageId"])
    return web.Response(status=200)


async def _cancel_many(request: web.Request) -> web.Response:
    eng, who = engine(request), user(request)
    body = await read_json(request)
    ids = values(request.query, "messageIds")
    if isinstance(body, dict) and isinstance(body.get("messageIds"), list):
        ids += [str(i) for i in body["messageIds"]]
    pending = list(eng.state(who).messages.values())
    if ids:
        wanted = set(ids)
        chosen = [m for m in pending if m.id in wanted]
    else:
        keep = message_filter(request.query)
        chosen = [m for m in pending if keep(m, m.created_at)]
    count = int_param(request.query, "count")
    if count is not None:
        chosen = chosen[: max(0, count)]
    return json_response({"cancelled": eng.cancel_many(who, chosen)})


def setup(app: web.Application) -> None:
    """Add the /v2/messages routes to `app`."""
    app.router.add_get("/v2/messages/{messageId}", _get_message)
    app.router.add_delete("/v2/messages/{messageId}", _cancel)
    app.router.add_delete("/v2/messages", _cancel_many)
