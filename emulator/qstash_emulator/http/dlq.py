"""/v2/dlq: list, get, delete, bulk delete, retry, bulk retry."""

from __future__ import annotations

from aiohttp import web

from ..core.state import DlqEntry
from .common import engine, json_response, read_json, user
from .filters import count_param, message_filter, page, values
from .publish import parse_spec
from .render import dlq_json
from .workflows import workflow_dlq_list

__all__ = ["setup"]


def _key(entry: DlqEntry) -> tuple[float, tuple[int, ...], str]:
    return (entry.time, entry.message.order, entry.dlq_id)


def _matching(request: web.Request) -> list[DlqEntry]:
    keep = message_filter(request.query)
    statuses = {int(s) for s in values(request.query, "responseStatus") if s.lstrip("-").isdigit()}
    return [
        e
        for e in engine(request).dlq_entries(user(request))
        if keep(e.message, e.time) and (not statuses or (e.response.status or 0) in statuses)
    ]


async def _ids(request: web.Request) -> list[str]:
    ids = values(request.query, "dlqIds")
    body = await read_json(request)
    if isinstance(body, dict) and isinstance(body.get("dlqIds"), list):
        ids += [str(i) for i in body["dlqIds"]]
    return ids


async def _list_dlq(request: web.Request) -> web.Response:
    if request.query.get("source") == "workflow":  # the workflow client's DLQ
        return workflow_dlq_list(request)
    chunk, cursor = page(
        _matching(request), _key, request.query.get("cursor"), count_param(request.query, 100, 100)
    )
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


async def _delete_many(request: web.Request) -> web.Response:
    ids = await _ids(request)
    if not ids:
        chunk, _cursor = page(
            _matching(request),
            _key,
            request.query.get("cursor"),
            count_param(request.query, 100, 100),
        )
        ids = [e.dlq_id for e in chunk]
    body: dict[str, object] = {"deleted": engine(request).dlq_delete(user(request), ids)}
    return json_response(body)


async def _retry(request: web.Request) -> web.Response:
    eng, who = engine(request), user(request)
    entry = eng.dlq_entry(who, request.match_info["dlqId"])
    spec = parse_spec(request)
    return json_response(eng.dlq_retry(who, entry, spec), 201)


async def _retry_many(request: web.Request) -> web.Response:
    eng, who = engine(request), user(request)
    ids = await _ids(request)
    entries = [eng.dlq_entry(who, i) for i in ids] if ids else _matching(request)
    spec = parse_spec(request)
    responses = [eng.dlq_retry(who, e, spec) for e in entries]
    return json_response({"responses": responses}, 201)


def setup(app: web.Application) -> None:
    """Add the /v2/dlq routes to `app`."""
    app.router.add_get("/v2/dlq", _list_dlq)
    app.router.add_delete("/v2/dlq", _delete_many)
    app.router.add_post("/v2/dlq/retry", _retry_many)
    app.router.add_post("/v2/dlq/retry/{dlqId}", _retry)
    app.router.add_get("/v2/dlq/{dlqId}", _get_dlq)
    app.router.add_delete("/v2/dlq/{dlqId}", _delete_dlq)
