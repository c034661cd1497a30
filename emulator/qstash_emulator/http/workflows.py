"""Upstash Workflow routes: waits, notifies, waiters, runs (steps, finish, cancel) and logs.

Thin: parse and validate here, the run logic lives in `workflows.runs.WorkflowRuns`.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from aiohttp import web

from ..core.errors import ApiError, bad_request
from ..core.state import DlqEntry
from ..parsing import header_names as h
from ..parsing.publish_headers import parse_message_headers
from ..workflows import Run, WorkflowRuns
from ..workflows.events import waiter_json
from ..workflows.model import RUN_STATES
from ..workflows.render import run_json, steps_raw
from .common import backend, json_response, read_json, user
from .filters import count_param, page, values
from .render import dlq_json

__all__ = ["setup", "workflow_dlq_list"]


def _runs_of(request: web.Request) -> WorkflowRuns:
    """The backend's workflow runs."""
    return backend(request).workflows


async def _wait(request: web.Request) -> web.Response:
    """POST /v2/wait/{eventId}: the run in the headers waits for the event."""
    body = await read_json(request)
    answer = _runs_of(request).events.wait(
        user(request), request.match_info["event_id"], list(request.headers.items()), body
    )
    return json_response(answer)


async def _notify(request: web.Request) -> web.Response:
    """POST /v2/notify/{eventId} (and /v2/notify/{runId}/{eventId}): deliver the event."""
    data = await request.read()
    run_id = request.match_info.get("run_id")
    if run_id is not None and not run_id.strip():
        raise bad_request("workflow run id cannot be empty")
    answers = _runs_of(request).events.notify(
        user(request), request.match_info["event_id"], data, run_id
    )
    return json_response(answers)


async def _waiters(request: web.Request) -> web.Response:
    """GET /v2/waiters/{eventId}: who waits for the event."""
    found = _runs_of(request).events.waiters(user(request), request.match_info["event_id"])
    return json_response([waiter_json(w) for w in found])


async def _run_steps(request: web.Request) -> web.Response:
    """The lazy fetch of the SDKs: a running run's entries; 404 once it is over."""
    run = _runs_of(request).get(user(request), request.match_info["run_id"])
    if not run.active:
        raise ApiError(404, f"workflow run {run.id} is {run.state}")
    return json_response(steps_raw(run))


async def _finish_run(request: web.Request) -> web.Response:
    """DELETE /v2/workflows/runs/{runId}?cancel=true|false: end or cancel a run."""
    cancel = request.query.get("cancel", "false").lower()
    if cancel not in ("true", "false"):
        raise bad_request(f"invalid cancel: {cancel!r}, want true or false")
    result = (await request.read()).decode("utf-8", "replace")
    _runs_of(request).finish(
        user(request), request.match_info["run_id"], cancel=cancel == "true", result=result or None
    )
    return web.Response(status=200)


def _run_filter(request: web.Request) -> list[Run]:
    """Runs matching the query, newest first.

    Filters: workflowRunId(s), workflowUrl (prefix, or exact with workflowUrlExactMatch),
    state, label, workflowCreatedAt, fromDate/toDate (unix ms).
    """
    query = request.query
    ids = values(query, "workflowRunId", "workflowRunIds")
    url = query.get("workflowUrl")
    exact = query.get("workflowUrlExactMatch", "").lower() == "true"
    states = values(query, "state")
    for state in states:
        if state not in RUN_STATES:
            raise bad_request(f"invalid state: {state!r}, want one of {', '.join(RUN_STATES)}")
    created = query.get("workflowCreatedAt")
    labels = set(values(query, "label"))
    dates = _dates(query)
    found = []
    for run in _runs_of(request).runs(user(request)):
        created_ms = int(run.created_at * 1000)
        if ids and run.id not in ids:
            continue
        if url and (run.url != url if exact else not run.url.startswith(url)):
            continue
        if states and run.state not in states:
            continue
        if labels and not labels & set(run.labels):
            continue
        if created and str(created_ms) != created:
            continue
        if "fromDate" in dates and created_ms < dates["fromDate"]:
            continue
        if "toDate" in dates and created_ms > dates["toDate"]:
            continue
        found.append(run)
    return found


async def _cancel_runs(request: web.Request) -> web.Response:
    """DELETE /v2/workflows/runs: cancel the runs the filter names (or every run, unfiltered)."""
    found = [r for r in _run_filter(request) if r.active]
    chunk, cursor = page(
        found, _key, request.query.get("cursor"), count_param(request.query, 100, 1000)
    )
    cancelled = _runs_of(request).cancel_many(user(request), chunk)
    body: dict[str, object] = {"cancelled": cancelled}
    if cursor:
        body["cursor"] = cursor
    return json_response(body)


def _key(run: Run) -> tuple[float, int]:
    return (run.created_at, run.order)


async def _events(request: web.Request) -> web.Response:
    """GET /v2/workflows/events?groupBy=workflowRunId: the runs, newest first, with steps."""
    found = _run_filter(request)
    chunk, cursor = page(
        found, _key, request.query.get("cursor"), count_param(request.query, 10, 1000)
    )
    eng = backend(request).engine
    body: dict[str, object] = {"runs": [run_json(r, eng) for r in chunk]}
    if cursor:
        body["cursor"] = cursor
    return json_response(body)


# -- the workflow DLQ ----------------------------------------------------------------------------
def _dlq_key(item: tuple[DlqEntry, Run]) -> tuple[float, tuple[int, ...], str]:
    entry = item[0]
    return (entry.time, entry.message.order, entry.dlq_id)


def _dlq_selection(
    request: web.Request, *, listing: bool = False
) -> tuple[list[tuple[DlqEntry, Run]], str | None, bool]:
    """The DLQ entries an action names.

    By `dlqIds`, or by filters / all (with count and cursor). Returns (entries, next cursor,
    whether they were named by id).
    """
    query = request.query
    found = _runs_of(request).dlq.entries(user(request))
    ids = values(query, "dlqIds")
    if ids and not listing:
        by_id = {entry.dlq_id: (entry, run) for entry, run in found}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise ApiError(404, f"workflow DLQ message {missing[0]} not found")
        return [by_id[i] for i in ids], None, True
    run_ids = set(values(query, "workflowRunId"))
    urls = set(values(query, "workflowUrl", "url"))
    labels = set(values(query, "label"))
    created = query.get("workflowCreatedAt")
    states = set(values(query, "failureFunctionState"))
    dates = _dates(query)
    kept = []
    for entry, run in found:
        entered = int(entry.time * 1000)
        failure = run.failure.state if run.failure is not None else None
        if (
            (run_ids and run.id not in run_ids)
            or (urls and run.url not in urls)
            or (labels and not labels & set(run.labels))
            or (created and str(int(run.created_at * 1000)) != created)
            or (states and failure not in states)
            or ("fromDate" in dates and entered < dates["fromDate"])
            or ("toDate" in dates and entered > dates["toDate"])
        ):
            continue
        kept.append((entry, run))
    chunk, cursor = page(kept, _dlq_key, query.get("cursor"), count_param(query, 100, 1000))
    return chunk, cursor, False


def _dates(query: Any) -> dict[str, int]:
    dates = {}
    for name in ("fromDate", "toDate"):
        raw = query.get(name)
        if raw:
            try:
                dates[name] = int(raw)
            except ValueError:
                raise bad_request(f"invalid {name}: {raw!r} is not unix milliseconds") from None
    return dates


def _overrides(request: web.Request) -> list[tuple[str, str]]:
    """Retries and flow control a resume or restart sets for the new run (checked here)."""
    names = ("upstash-retries", "upstash-flow-control-key", "upstash-flow-control-value")
    pairs = [(k, v) for k, v in request.headers.items() if k.lower() in names]
    parse_message_headers(pairs, user(request).quota)
    return pairs


async def _dlq_action(request: web.Request, action: str) -> web.Response:
    overrides = _overrides(request)
    chosen, cursor, _ = _dlq_selection(request)
    runs, who = _runs_of(request), user(request)
    act = runs.dlq.resume if action == "resume" else runs.dlq.restart
    started = [act(who, entry, run, overrides) for entry, run in chosen]
    body: dict[str, object] = {"workflowRuns": started}
    if cursor:
        body["cursor"] = cursor
    return json_response(body)


async def _dlq_resume(request: web.Request) -> web.Response:
    """POST /v2/workflows/dlq/resume."""
    return await _dlq_action(request, "resume")


async def _dlq_restart(request: web.Request) -> web.Response:
    """POST /v2/workflows/dlq/restart."""
    return await _dlq_action(request, "restart")


async def _dlq_delete(request: web.Request) -> web.Response:
    """DELETE /v2/workflows/dlq."""
    chosen, cursor, _ = _dlq_selection(request)
    deleted = backend(request).engine.dlq_delete(user(request), [e.dlq_id for e, _ in chosen])
    body: dict[str, object] = {"deleted": deleted}
    if cursor:
        body["cursor"] = cursor
    return json_response(body)


async def _dlq_retry_failure(request: web.Request) -> web.Response:
    """POST /v2/workflows/dlq/callback/{dlqId}: the failure callback again."""
    dlq_id = request.match_info["dlq_id"]
    found = {e.dlq_id: (e, r) for e, r in _runs_of(request).dlq.entries(user(request))}
    if dlq_id not in found:
        raise ApiError(404, f"workflow DLQ message {dlq_id} not found")
    entry, run = found[dlq_id]
    return json_response(_runs_of(request).dlq.retry_failure(user(request), entry, run))


def workflow_dlq_list(request: web.Request) -> web.Response:
    """`GET /v2/dlq?source=workflow` (the JS client's `dlq.list`): failed runs' messages."""
    chosen, cursor, _ = _dlq_selection(request, listing=True)
    body: dict[str, object] = {"messages": [_dlq_message(e, r) for e, r in chosen]}
    if cursor:
        body["cursor"] = cursor
    return json_response(body)


def _dlq_message(entry: DlqEntry, run: Run) -> dict[str, Any]:
    out = dlq_json(entry)
    out.update(
        workflowRunId=run.id,
        workflowCreatedAt=int(run.created_at * 1000),
        workflowUrl=run.url,
    )
    if run.labels:
        out["label"], out["labels"] = run.labels[0], list(run.labels)
    if run.failure is not None:
        f = run.failure
        out["failureCallback"] = f.url
        info: dict[str, Any] = {"state": f.state}
        if f.response_status is not None:
            info["responseStatus"] = f.response_status
            info["responseBody"] = f.response_body or ""
        out["failureCallbackInfo"] = info
    return out


async def _webhook(request: web.Request) -> web.Response:
    """A `context.createWebhook` URL: any request to it is the event its run waits for.

    The event is what the JS SDK's `waitForWebhook` reads: method, URL, headers, base64 body.
    """
    name = request.match_info["user_id"]
    try:
        who = backend(request).users[name]
    except KeyError:
        raise ApiError(404, f"user {name} not found") from None
    body = await request.read()
    event = {
        "method": request.method,
        "proto": request.scheme,
        "host": request.host,
        "url": request.path_qs,
        "header": h.from_pairs(request.headers.items()),
        "body": base64.b64encode(body).decode(),
    }
    data = json.dumps(event, separators=(",", ":")).encode()
    _runs_of(request).events.notify(
        who, request.match_info["event_id"], data, request.match_info["run_id"]
    )
    return json_response({})


def setup(app: web.Application) -> None:
    """Add the workflow routes."""
    app.router.add_post("/v2/wait/{event_id}", _wait)
    app.router.add_post("/v2/notify/{event_id}", _notify)
    app.router.add_post("/v2/notify/{run_id}/{event_id}", _notify)
    app.router.add_get("/v2/waiters/{event_id}", _waiters)
    app.router.add_get("/v2/workflows/runs/{run_id}", _run_steps)
    app.router.add_delete("/v2/workflows/runs/{run_id}", _finish_run)
    app.router.add_delete("/v2/workflows/runs", _cancel_runs)
    app.router.add_get("/v2/workflows/events", _events)
    app.router.add_get("/v2/workflows/logs", _events)
    app.router.add_post("/v2/workflows/dlq/resume", _dlq_resume)
    app.router.add_post("/v2/workflows/dlq/restart", _dlq_restart)
    app.router.add_delete("/v2/workflows/dlq", _dlq_delete)
    app.router.add_post("/v2/workflows/dlq/callback/{dlq_id}", _dlq_retry_failure)
    app.router.add_route("*", "/v2/workflows/hooks/{user_id}/{run_id}/{event_id}", _webhook)
