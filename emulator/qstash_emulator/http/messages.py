"""/v2/messages: get, cancel, bulk cancel."""

from __future__ import annotations

import heapq

from aiohttp import web

from ..core.errors import bad_request
from ..core.state import Message
from .common import engine, json_response, read_json, user
from .filters import (
    CANCEL_PARAMS,
    decode_cursor,
    encode_cursor,
    int_param,
    message_filter,
    reject_unknown,
    values,
)
from .render import message_json

__all__ = ["setup"]

MAX_CANCEL_COUNT = 500  # the reference's bound on `count`


async def _get_message(request: web.Request) -> web.Response:
    message = engine(request).get_message(user(request), request.match_info["messageId"])
    return json_response(message_json(message))


async def _cancel(request: web.Request) -> web.Response:
    engine(request).cancel(user(request), request.match_info["messageId"])
    # @upstash/qstash parses this answer as JSON.
    return json_response({"cancelled": 1})


async def _cancel_many(request: web.Request) -> web.Response:
    """Cancel by ids or filters.

    `count` bounds how many are cancelled (a selected message that cannot be cancelled any
    more does not use it up); with more left, a `cursor` goes on.
    """
    query = request.query
    reject_unknown(query, CANCEL_PARAMS)
    eng, who = engine(request), user(request)
    body = await read_json(request)
    ids = values(query, "messageIds")
    if isinstance(body, dict) and isinstance(body.get("messageIds"), list):
        ids += [str(i) for i in body["messageIds"]]
    count = int_param(query, "count")
    if count is not None and count < 1:
        raise bad_request(f"invalid count: {count}, must be at least 1")
    if count is not None:
        count = min(count, MAX_CANCEL_COUNT)
    cursor = query.get("cursor")
    after = decode_cursor(cursor) if cursor else None
    if after is not None and not (
        isinstance(after, list) and all(isinstance(n, int) for n in after)
    ):
        raise bad_request(f"invalid cursor: {cursor!r}")
    pending = eng.state(who).messages
    if ids:
        found = (pending.get(message_id) for message_id in dict.fromkeys(ids))
        chosen = [m for m in found if m is not None]
    else:
        keep = message_filter(query)
        chosen = [m for m in pending.values() if keep(m, m.created_at)]
    # Only what can still be cancelled (an attempt in flight may already be being cancelled).
    last = tuple(after) if after is not None else ()
    chosen = [m for m in chosen if not m.cancel_requested and m.order > last]
    # In message order; a page needs only its first `count` (and one more, for the cursor).
    if count is not None and len(chosen) > count + 1:
        chosen = heapq.nsmallest(count + 1, chosen, key=_order)
    else:
        chosen.sort(key=_order)
    cancelled = 0
    for position, message in enumerate(chosen):
        if count is not None and cancelled >= count:
            answer: dict[str, object] = {"cancelled": cancelled}
            answer["cursor"] = encode_cursor(list(chosen[position - 1].order))
            return json_response(answer)
        cancelled += eng.cancel_many(who, [message])
    return json_response({"cancelled": cancelled})


def _order(message: Message) -> tuple[int, ...]:
    return message.order


def setup(app: web.Application) -> None:
    """Add the /v2/messages routes to `app`."""
    app.router.add_get("/v2/messages/{messageId}", _get_message)
    app.router.add_delete("/v2/messages/{messageId}", _cancel)
    app.router.add_delete("/v2/messages", _cancel_many)
