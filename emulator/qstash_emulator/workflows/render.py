"""A run as the workflow logs (`GET /v2/workflows/events`) and the JS client's `logs()` show it."""

from __future__ import annotations

import base64
import json
from typing import Any

from ..core.clock import ms
from ..core.engine import Engine
from ..core.state import CANCELLED, FAILED, RETRY
from .model import STEP, TO_CALLBACK, Entry, Run

__all__ = ["run_json", "step_groups", "steps_raw"]

# What the JS client's WorkflowRunLog shows of the run that invoked this one.
_INVOKER_FIELDS = ("workflowRunId", "workflowUrl", "workflowRunCreatedAt")


def run_json(run: Run, engine: Engine) -> dict[str, Any]:
    """A run as `GET /v2/workflows/events` lists it (the JS client's WorkflowRunLog)."""
    out: dict[str, Any] = {
        "workflowRunId": run.id,
        "workflowUrl": run.url,
        "workflowState": run.state,
        "workflowRunCreatedAt": ms(run.created_at),
        "steps": step_groups(run, engine),
    }
    if run.completed_at is not None:
        out["workflowRunCompletedAt"] = ms(run.completed_at)
    if run.response is not None:
        out["workflowRunResponse"] = run.response
    if run.dlq_id is not None:
        out["dlqId"] = run.dlq_id
    if run.labels:
        out["label"] = run.labels[0]
        out["labels"] = list(run.labels)
    if run.invoker is not None:  # started by another run's context.invoke
        invoker = {k: run.invoker[k] for k in _INVOKER_FIELDS if k in run.invoker}
        if invoker:
            out["invoker"] = invoker
    if run.failure is not None:
        f = run.failure
        failure: dict[str, Any] = {
            "messageId": f.message_id,
            "url": f.url,
            "state": f.state,
            "failHeaders": f.fail_headers,
            "failStatus": f.fail_status,
            "failResponse": f.fail_body,
            "dlqId": run.dlq_id or "",
        }
        if f.response_status is not None:
            failure["responseStatus"] = f.response_status
            failure["responseBody"] = f.response_body or ""
        out["failureFunction"] = failure
    return out


def step_groups(run: Run, engine: Engine) -> list[dict[str, Any]]:
    """The run's steps as the logs group them.

    Finished steps in order (sequential, or parallel results grouped in step order), then one
    "next" group: the run's messages still on their way, or the one it failed on, with their
    failed attempts.
    """
    groups: list[dict[str, Any]] = []
    last_call: Entry | None = None
    for i, entry in enumerate(run.entries):
        if entry.call_type == TO_CALLBACK:
            last_call = entry
        if entry.call_type != STEP:
            continue
        step = _initial(run, entry) if i == 0 else _step(entry, last_call)
        if step is None or (step.get("stepId") == 0 and i != 0):
            continue  # a parallel plan step, not a result
        step["state"] = "STEP_SUCCESS"
        concurrent = int(step.get("concurrent") or 1)
        last = groups[-1] if groups else None
        if concurrent > 1 and last is not None and last["type"] == "parallel":
            last["steps"].append(step)
        else:
            groups.append({"type": "parallel" if concurrent > 1 else "sequential", "steps": [step]})
    for group in groups:  # parallel results in step order, whichever finished first
        group["steps"].sort(key=lambda step: step.get("stepId") or 0)
    messages = engine.state(run.user).messages
    pending = [
        _next(run, messages[m].id, messages[m].state, messages[m].max_retries)
        for m in run.message_ids
        if m in messages and not messages[m].finished and messages[m].kind == "message"
    ]
    if run.failed_message is not None:
        retries = next(
            (e.max_retries for e in run.entries if e.message_id == run.failed_message), 0
        )
        pending.append(_next(run, run.failed_message, FAILED, retries))
    if pending:
        groups.append({"type": "next", "steps": pending})
    return groups


def _initial(run: Run, entry: Entry) -> dict[str, Any]:
    return {
        "stepId": 0,
        "stepName": "init",
        "stepType": "Initial",
        "callType": STEP,
        "messageId": entry.message_id,
        "out": entry.body.decode("utf-8", "replace"),
        "concurrent": 1,
        "retries": entry.max_retries,
        "createdAt": ms(entry.created_at),
        "headers": entry.headers,
    }


def _step(entry: Entry, last_call: Entry | None) -> dict[str, Any] | None:
    raw = entry.step
    if raw is None:
        return None
    step: dict[str, Any] = {
        "stepId": raw.get("stepId"),
        "stepName": raw.get("stepName"),
        "stepType": raw.get("stepType"),
        "callType": STEP,
        "messageId": entry.message_id,
        "out": raw.get("out"),
        "concurrent": raw.get("concurrent", 1),
        "retries": entry.max_retries,
        "createdAt": ms(entry.created_at),
        "headers": entry.headers,
    }
    for key in ("sleepFor", "sleepUntil", "waitEventId", "waitTimeout", "waitTimeoutDuration"):
        if raw.get(key) is not None:
            step[key] = raw[key]
    if raw.get("waitTimeoutDeadline") is not None:
        step["waitTimeoutDeadline"] = raw["waitTimeoutDeadline"]
    if raw.get("stepType") == "Call":
        _add_call(step, raw, last_call)
    return step


def _add_call(step: dict[str, Any], raw: dict[str, Any], sent: Entry | None) -> None:
    """The call's request and answer, from the run's toCallback and fromCallback entries."""
    try:
        out = json.loads(raw.get("out") or "{}")
    except ValueError:
        out = {}
    if isinstance(out, dict):
        step["callResponseStatus"] = out.get("status")
        step["callResponseBody"] = out.get("body")
        step["callResponseHeaders"] = out.get("header") or {}
    call = sent.call if sent is not None and sent.call is not None else None
    if call is not None:
        step["callUrl"] = call.get("url")
        step["callMethod"] = call.get("method")
        step["callHeaders"] = call.get("headers") or {}
        body = call.get("body") or b""
        step["callBody"] = body.decode("utf-8", "replace") if isinstance(body, bytes) else body


def _next(run: Run, message_id: str, state: str, retries: int) -> dict[str, Any]:
    states = {RETRY: "STEP_RETRY", FAILED: "STEP_FAILED", CANCELLED: "STEP_CANCELED"}
    out: dict[str, Any] = {
        "messageId": message_id,
        "state": states.get(state, "STEP_PROGRESS"),
        "retries": retries,
    }
    if message_id in run.error_step:
        out["stepName"] = run.error_step[message_id]
    if message_id in run.errors:
        out["errors"] = list(run.errors[message_id])
    return out


def steps_raw(run: Run) -> list[dict[str, Any]]:
    """`GET /v2/workflows/runs/{id}`: the run's entries as the SDKs' lazy fetch reads them."""
    return [
        {
            "messageId": e.message_id,
            "body": base64.b64encode(e.body).decode(),
            "callType": e.call_type,
        }
        for e in run.entries
    ]
