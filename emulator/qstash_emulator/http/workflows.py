"""Upstash Workflow routes: waits, notifies, waiters, runs (steps, finish, cancel) and logs.

Thin: parse and validate here, the run logic lives in `workflows.runs.WorkflowRuns`.
"""

from __future__ import annotations

from aiohttp import web

from ..core.errors import ApiError, bad_request
from ..workflows import Run, WorkflowRuns
from ..workflows.model import RUN_STATES
from ..workflows.render import run_json, steps_raw
from ..workflows.runs import waiter_json
from .common import Handler, backend, json_response, read_json, user
from .filters import count_param, page, values


def runs_of(request: web.Request) -> WorkflowRuns:
    return backend(request).workflows


async def wait(request: web.Request) -> web.Response:
    body = await read_json(request)
    answer = runs_of(request).wait(
        user(request), request.match_info["event_id"], list(request.headers.items()), body
    )
    return json_response(answer)


async def notify(request: web.Request) -> web.Response:
    data = await request.read()
    run_id = request.match_info.get("run_id")
    if run_id is not None and not run_id.strip():
        raise bad_request("workflow run id cannot be empty")
    answers = runs_of(request).notify(user(request), request.match_info["event_id"], data, run_id)
    return json_response(answers)


async def waiters(request: web.Request) -> web.Response:
    found = runs_of(request).waiters(user(request), request.match_info["event_id"])
    return json_response([waiter_json(w) for w in found])


async def run_steps(request: web.Request) -> web.Response:
    """The lazy fetch of the SDKs: a running run's entries; 404 once it is over."""
    run = runs_of(request).get(user(request), request.match_info["run_id"])
    if not run.active:
        raise ApiError(404, f"workflow run {run.id} is {run.state}")
    return json_response(steps_raw(run))


async def finish_run(request: web.Request) -> web.Response:
    cancel = request.query.get("cancel", "false").lower()
    if cancel not in ("true", "false"):
        raise bad_request(f"invalid cancel: {cancel!r}, want true or false")
    result = (await request.read()).decode("utf-8", "replace")
    runs_of(request).finish(
        user(request), request.match_info["run_id"], cancel=cancel == "true", result=result or None
    )
    return web.Response(status=200)


def _run_filter(request: web.Request) -> list[Run]:
    """Runs matching the query (workflowRunId(s), workflowUrl, state, fromDate/toDate in ms)."""
    query = request.query
    ids = values(query, "workflowRunId", "workflowRunIds")
    url = query.get("workflowUrl")
    exact = query.get("workflowUrlExactMatch", "").lower() == "true"
    states = values(query, "state")
    for state in states:
        if state not in RUN_STATES:
            raise bad_request(f"invalid state: {state!r}, want one of {', '.join(RUN_STATES)}")
    created = query.get("workflowCreatedAt")
    dates = {}
    for name in ("fromDate", "toDate"):
        raw = query.get(name)
        if raw:
            try:
                dates[name] = int(raw)
            except ValueError:
                raise bad_request(f"invalid {name}: {raw!r} is not unix milliseconds") from None
    found = []
    for run in runs_of(request).runs(user(request)):
        created_ms = int(run.created_at * 1000)
        if ids and run.id not in ids:
            continue
        if url and (run.url != url if exact else not run.url.startswith(url)):
            continue
        if states and run.state not in states:
            continue
        if created and str(created_ms) != created:
            continue
        if "fromDate" in dates and created_ms < dates["fromDate"]:
            continue
        if "toDate" in dates and created_ms > dates["toDate"]:
            continue
        found.append(run)
    return found


async def cancel_runs(request: web.Request) -> web.Response:
    """DELETE /v2/workflows/runs: cancel the runs the filter names (or every run, unfiltered)."""
    found = [r for r in _run_filter(request) if r.active]
    chunk, cursor = page(
        found, _key, request.query.get("cursor"), count_param(request.query, 100, 1000)
    )
    cancelled = runs_of(request).cancel_many(user(request), chunk)
    body: dict[str, object] = {"cancelled": cancelled}
    if cursor:
        body["cursor"] = cursor
    return json_response(body)


def _key(run: Run) -> tuple[float, int]:
    return (run.created_at, run.order)


async def events(request: web.Request) -> web.Response:
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


def _missing(what: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        raise ApiError(
            501, f"not implemented on the emulator: {what} ({request.method} {request.path})"
        )

    return handler


def setup(app: web.Application) -> None:
    app.router.add_post("/v2/wait/{event_id}", wait)
    app.router.add_post("/v2/notify/{event_id}", notify)
    app.router.add_post("/v2/notify/{run_id}/{event_id}", notify)
    app.router.add_get("/v2/waiters/{event_id}", waiters)
    app.router.add_get("/v2/workflows/runs/{run_id}", run_steps)
    app.router.add_delete("/v2/workflows/runs/{run_id}", finish_run)
    app.router.add_delete("/v2/workflows/runs", cancel_runs)
    app.router.add_get("/v2/workflows/events", events)
    app.router.add_get("/v2/workflows/logs", events)
    dlq = _missing("the workflow DLQ (resume, restart, failure-callback retry, delete)")
    app.router.add_route("*", "/v2/workflows/dlq", dlq)
    app.router.add_route("*", "/v2/workflows/dlq/{tail:.*}", dlq)
    app.router.add_route("*", "/v2/workflows/hooks/{tail:.*}", _missing("workflow webhooks"))
