"""/v2/dlq: list, get, delete, bulk delete, retry, bulk retry."""

from __future__ import annotations

from collections.abc import Iterator

from aiohttp import web

from ..core.errors import bad_request
from ..core.history import DlqKey, dlq_key
from ..core.state import DlqEntry
from ..parsing.plain_int import plain_int
from .common import engine, json_response, read_json, user
from .filters import (
    DLQ_BULK_PARAMS,
    count_param,
    decode_key_cursor,
    message_filter,
    page_of,
    reject_unknown,
    values,
)
from .publish import parse_spec
from .render import dlq_json
from .workflows import workflow_dlq_list

__all__ = ["setup"]


def _matching(request: web.Request, after: DlqKey | None = None) -> Iterator[DlqEntry]:
    """Entries matching the query's filters, newest first, from the ordered index."""
    keep = message_filter(request.query)
    statuses = set()
    for raw in values(request.query, "responseStatus"):
        try:
            statuses.add(plain_int(raw))
        except ValueError:
            # Ignoring it would widen a bulk delete or retry to every status.
            raise bad_request(f"invalid responseStatus: {raw!r} is not an integer") from None
    for e in engine(request).state(user(request)).dlq.newest_first(after):
        if keep(e.message, e.time) and (not statuses or (e.response.status or 0) in statuses):
            yield e


def _page(request: web.Request) -> tuple[list[DlqEntry], str | None]:
    """A page of matching entries after the query's cursor: O(page), not O(DLQ)."""
    after = decode_key_cursor(request.query.get("cursor"), str)
    return page_of(_matching(request, after), dlq_key, count_param(request.query, 100, 100))


async def _ids(request: web.Request) -> list[str]:
    ids = values(request.query, "dlqIds")
    body = await read_json(request)
    if isinstance(body, dict) and isinstance(body.get("dlqIds"), list):
        ids += [str(i) for i in body["dlqIds"]]
    return ids


async def _list_dlq(request: web.Request) -> web.Response:
    if request.query.get("source") == "workflow":  # the workflow client's DLQ
        return workflow_dlq_list(request)
    chunk, cursor = _page(request)
    body: dict[str, object] = {"messages": [dlq_json(e) for e in chunk]}
    if cursor:
        body["cursor"] = cursor
    return json_response(body)


async def _get_dlq(request: web.Request) -> web.Response:
    entry = engine(request).dlq_entry(user(request), request.match_info["dlqId"])
    return json_response(dlq_json(entry))


async def _delete_dlq(request: web.Request) -> web.Response:
    eng, who = engine(request), user(request)
    eng.dlq_entry(who, request.match_info["dlqId"])  # 404 when missing
    eng.dlq_delete(who, [request.match_info["dlqId"]])
    return web.Response(status=200)


def _bulk(request: web.Request) -> tuple[list[DlqEntry], str | None]:
    """The entries a bulk delete or retry by filter acts on, and the cursor to go on from.

    At most `count` (default and at most 100), newest first, after `cursor`; the cursor is
    None when nothing more matches.
    """
    return _page(request)


async def _delete_many(request: web.Request) -> web.Response:
    reject_unknown(request.query, DLQ_BULK_PARAMS)
    ids = await _ids(request)
    cursor = None
    if not ids:
        chunk, cursor = _bulk(request)
        ids = [e.dlq_id for e in chunk]
    body: dict[str, object] = {"deleted": engine(request).dlq_delete(user(request), ids)}
    if cursor:
        body["cursor"] = cursor
    return json_response(body)


async def _retry(request: web.Request) -> web.Response:
    eng, who = engine(request), user(request)
    entry = eng.dlq_entry(who, request.match_info["dlqId"])
    spec = parse_spec(request)
    return json_response(eng.dlq_retry(who, entry, spec), 201)


async def _retry_many(request: web.Request) -> web.Response:
    reject_unknown(request.query, DLQ_BULK_PARAMS)
    eng, who = engine(request), user(request)
    ids = await _ids(request)
    cursor = None
    if ids:
        entries = [eng.dlq_entry(who, i) for i in ids]
    else:
        entries, cursor = _bulk(request)
    spec = parse_spec(request)
    responses = [eng.dlq_retry(who, e, spec) for e in entries]
    body: dict[str, object] = {"responses": responses}
    if cursor:
        body["cursor"] = cursor
    return json_response(body, 201)


def setup(app: web.Application) -> None:
    """Add the /v2/dlq routes to `app`."""
    app.router.add_get("/v2/dlq", _list_dlq)
    app.router.add_delete("/v2/dlq", _delete_many)
    app.router.add_post("/v2/dlq/retry", _retry_many)
    app.router.add_post("/v2/dlq/retry/{dlqId}", _retry)
    app.router.add_get("/v2/dlq/{dlqId}", _get_dlq)
    app.router.add_delete("/v2/dlq/{dlqId}", _delete_dlq)
