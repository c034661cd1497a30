"""upstash-workflow (PyPI) served by FastAPI under uvicorn, against a standalone emulator, with
signatures verified: `python workflow_py.py [scenario ...]`. The SDK has no client, so runs are
started by publishing to the workflow (as the SDK asks: it verifies even the first request)
and read through the emulator's workflow logs over plain HTTP."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
import uuid
from typing import Any

import uvicorn
from _contract import QSTASH_URL, TOKEN, check, eventually, main, received, scenario, url
from fastapi import FastAPI
from upstash_workflow import AsyncWorkflowContext
from upstash_workflow.fastapi import Serve

app = FastAPI()
serve = Serve(app)
seen: dict[str, dict[str, Any]] = {}  # the payload's key -> what the route saw


def record(context: AsyncWorkflowContext[Any], **fields: Any) -> None:
    key = context.request_payload["key"]
    seen.setdefault(key, {"run": context.workflow_run_id}).update(fields)


@serve.post("/seq")
async def seq(context: AsyncWorkflowContext[dict[str, Any]]) -> None:
    async def a() -> str:
        return f"A:{context.request_payload['n']}"

    first = await context.run("a", a)

    async def b() -> str:
        return f"{first}+B"

    record(context, result=await context.run("b", b))


@serve.post("/sleep")
async def sleeping(context: AsyncWorkflowContext[dict[str, Any]]) -> None:
    before = await context.run("before", time.time)
    await context.sleep("nap", 1)
    after = await context.run("after", time.time)
    record(context, before=before, after=after)


@serve.post("/call")
async def calling(context: AsyncWorkflowContext[dict[str, Any]]) -> None:
    payload = context.request_payload
    answer = await context.call(
        "api-call",
        url=payload["url"],
        method="POST",
        body={"hello": "api"},
        headers={"X-Call": "yes"},
        retries=payload.get("retries", 0),
    )
    record(context, status=answer.status, body=answer.body)


async def on_failure(
    context: AsyncWorkflowContext[dict[str, Any]], status: int, response: str, headers: Any
) -> None:
    record(context, failure={"status": status, "response": response})


@serve.post("/fail", failure_function=on_failure, retries=0)
async def failing(context: AsyncWorkflowContext[dict[str, Any]]) -> None:
    async def boom() -> None:
        raise RuntimeError("boom! the step failed")

    await context.run("boom", boom)


@serve.post("/cancel")
async def cancelled(context: AsyncWorkflowContext[dict[str, Any]]) -> None:
    async def first() -> str:
        record(context, first=True)
        return "done"

    await context.run("first", first)
    await context.sleep("long", 120)

    async def never() -> None:
        record(context, reached_never=True)

    await context.run("never", never)


server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
threading.Thread(target=server.run, daemon=True).start()
while not server.started:
    time.sleep(0.02)
APP = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"


def api(method: str, path: str, body: bytes | None = None, **query: Any) -> Any:
    qs = ("?" + urllib.parse.urlencode(query)) if query else ""
    request = urllib.request.Request(
        QSTASH_URL + path + qs,
        data=body,
        method=method,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        raw = answer.read()
    return json.loads(raw) if raw else None


def start(route: str, **payload: Any) -> str:
    """Publish to the workflow through QStash; the key names the run in `seen`."""
    key = uuid.uuid4().hex
    body = json.dumps({"key": key, **payload}).encode()
    api("POST", f"/v2/publish/{APP}{route}", body)
    return key


def run_id(key: str) -> str:
    found = eventually(lambda: seen.get(key, {}).get("run"), "the run to start")
    return str(found)


def run_log(rid: str) -> dict[str, Any] | None:
    runs = api("GET", "/v2/workflows/events", workflowRunId=rid)["runs"]
    return next((r for r in runs if r["workflowRunId"] == rid), None)


def finished(key: str, state: str = "RUN_SUCCESS", timeout: float = 30) -> dict[str, Any]:
    rid = run_id(key)

    def done() -> dict[str, Any] | None:
        found = run_log(rid)
        return found if found and found["workflowState"] != "RUN_STARTED" else None

    run = eventually(done, f"run {rid} to finish", timeout)
    check(run["workflowState"] == state, f"run state {state}", run=run)
    return dict(run)


def step_names(run: dict[str, Any]) -> list[str]:
    # Finished steps (a "next" group lists messages on their way, named only when failing).
    return [s["stepName"] for g in run["steps"] if g["type"] != "next" for s in g["steps"]]


@scenario
def sequential_steps() -> Any:
    key = start("/seq", n=7)
    run = finished(key)
    check(seen[key]["result"] == "A:7+B", "route result", seen=seen[key])
    check(step_names(run) == ["init", "a", "b"], "steps", steps=step_names(run))
    check(run["workflowUrl"] == f"{APP}/seq", "workflow url", run=run)
    return step_names(run)


@scenario
def sleep() -> Any:
    key = start("/sleep")
    run = finished(key)
    slept = seen[key]["after"] - seen[key]["before"]
    check(slept >= 0.9, "slept about a second", slept=slept)
    nap = next(s for g in run["steps"] for s in g["steps"] if s["stepName"] == "nap")
    check(nap["stepType"] == "SleepFor", "sleep step logged", nap=nap)
    return round(slept, 2)


@scenario
def call() -> Any:
    key = start("/call", url=url("api"))
    run = finished(key)
    check(seen[key]["status"] == 200 and seen[key]["body"] == "ok", "call answer", seen=seen[key])
    [request] = received(_path("api"))
    check(request["method"] == "POST" and json.loads(request["body"]) == {"hello": "api"}, "call")
    check(request["headers"].get("x-call") == "yes", "call headers", headers=request["headers"])
    step = next(s for g in run["steps"] for s in g["steps"] if s["stepName"] == "api-call")
    check(step["callResponseStatus"] == 200 and step["callUrl"] == url("api"), "logged", step=step)
    return seen[key]["status"]


def _path(tail: str) -> str:
    return url(tail)[len(_target()) :]


def _target() -> str:
    from _contract import TARGET

    return TARGET


@scenario
def call_retried_failure() -> Any:
    # One retry after QStash's default backoff (about 12 s): the failed answer reaches the run.
    key = start("/call", url=url("status/503/down"), retries=1)
    finished(key, timeout=60)
    check(seen[key]["status"] == 503, "the final failed status", seen=seen[key])
    attempts = received(_path("status/503"))
    check(len(attempts) == 2, "one call and one retry", attempts=len(attempts))
    return len(attempts)


@scenario
def failure_function() -> Any:
    key = start("/fail", order=42)
    rid = run_id(key)

    def handled() -> dict[str, Any] | None:
        found = run_log(rid)
        failure = (found or {}).get("failureFunction") or {}
        return found if failure.get("state") == "CALLBACK_SUCCESS" else None

    run = eventually(handled, "the failure function")
    check(run["workflowState"] == "RUN_FAILED", "run failed", run=run)
    failure = seen[key]["failure"]
    check(failure == {"status": 500, "response": "boom! the step failed"}, "failure", f=failure)
    check(run.get("dlqId"), "run in the DLQ", run=run)
    return failure


@scenario
def cancel() -> Any:
    key = start("/cancel")
    rid = run_id(key)
    eventually(lambda: "long" in step_names(run_log(rid) or {"steps": []}), "the run to sleep")
    api("DELETE", f"/v2/workflows/runs/{rid}", cancel="true")
    run = run_log(rid)
    check(run is not None and run["workflowState"] == "RUN_CANCELED", "cancelled", run=run)
    again = api("DELETE", "/v2/workflows/runs", workflowRunIds=rid)
    check(again == {"cancelled": 0}, "a cancelled run is not cancelled again", again=again)
    check("reached_never" not in seen[key], "the run went no further")
    return run["workflowState"]


@scenario
def runs_listing() -> Any:
    keys = [start("/seq", n=1), start("/seq", n=2)]
    ids = [finished(k)["workflowRunId"] for k in keys]
    runs = api("GET", "/v2/workflows/events", workflowUrl=f"{APP}/seq")["runs"]
    listed = [r["workflowRunId"] for r in runs]
    check(all(i in listed for i in ids), "both runs listed", listed=listed)
    first = api("GET", "/v2/workflows/events", workflowUrl=f"{APP}/seq", count=1)
    check(len(first["runs"]) == 1 and first.get("cursor"), "paged", first=first)
    second = api(
        "GET", "/v2/workflows/events", workflowUrl=f"{APP}/seq", count=1, cursor=first["cursor"]
    )
    check(second["runs"][0]["workflowRunId"] != first["runs"][0]["workflowRunId"], "next page")
    return len(listed)


if __name__ == "__main__":
    main()
    server.should_exit = True
