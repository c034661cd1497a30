"""Workflow runs and waiters in a persistent store (`Store.register`), and back at startup.

Two kinds: a run (`wf_run`, keyed by run id; its initial body as the blob) with everything
the runs know of its messages (`Tracked`), and a waiter (`wf_waiter`, keyed by its event id
and timer order, which the restored timer keeps so the key stays the same). The messages
themselves (step lists already built into their bodies) are the core's: a sleeping step is a
delayed message and resumes as one. Runs and waiters are restored after the messages, and a
waiter's timeout is re-armed at its saved deadline (at once if that passed while down).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from ..core.scheduler import Timer
from ..store import codec
from .model import Entry, FailureCall, Run, Waiter

if TYPE_CHECKING:
    from ..backend import Backend
    from ..store.base import Store
    from .runs import WorkflowRuns

__all__ = ["RUN", "WAITER", "install", "waiter_key"]

RUN = "wf_run"  # key: run id; obj: Run
WAITER = "wf_waiter"  # key: waiter_key(waiter); obj: Waiter


def waiter_key(waiter: Waiter) -> str:
    """A waiter's key: its event id and its timer's order (unique, kept across a restart)."""
    order = waiter.timer.order if waiter.timer is not None else ()
    return f"{waiter.event_id}#{'.'.join(map(str, order))}"


def install(runs: WorkflowRuns, store: Store) -> None:
    """Register the runs' two kinds with the store (a no-op for the memory store)."""

    def encode_run(run: Run) -> tuple[Any, bytes | None]:
        return _run_json(runs, run), run.initial_body

    def restore_run(backend: Backend, user: str, key: str, data: Any, body: bytes | None) -> None:
        _restore_run(runs, backend, user, key, data, body or b"")

    def encode_waiter(waiter: Waiter) -> tuple[Any, bytes | None]:
        return _waiter_json(waiter), None

    def restore_waiter(
        backend: Backend, user: str, key: str, data: Any, body: bytes | None
    ) -> None:
        runs.events.restore(_load_waiter(backend, user, data), tuple(data["order"]))

    store.register(RUN, encode_run, restore_run)
    store.register(WAITER, encode_waiter, restore_waiter)


# -- runs ---------------------------------------------------------------------------------------
def _entry_json(entry: Entry) -> dict[str, Any]:
    call = None
    if entry.call is not None:
        call = {**entry.call, "body": codec.b64e(entry.call.get("body") or b"")}
    return {
        "message_id": entry.message_id,
        "call_type": entry.call_type,
        "body": codec.b64e(entry.body),
        "created_at": entry.created_at,
        "headers": entry.headers,
        "max_retries": entry.max_retries,
        "call": call,
    }


def _load_entry(data: dict[str, Any]) -> Entry:
    call = data["call"]
    if call is not None:
        call = {**call, "body": codec.b64d(call["body"])}
    return Entry(
        message_id=data["message_id"],
        call_type=data["call_type"],
        body=codec.b64d(data["body"]),
        created_at=data["created_at"],
        headers=data["headers"],
        max_retries=data["max_retries"],
        call=call,
    )


def _run_json(runs: WorkflowRuns, run: Run) -> dict[str, Any]:
    tracked = {}
    for mid in run.message_ids:
        t = runs.tracked(mid)
        if t is not None and t.run_id == run.id:
            tracked[mid] = [t.call_type, [list(pair) for pair in t.raw], t.failure_fields]
    return {
        "url": run.url,
        "created_at": run.created_at,
        "sdk_version": run.sdk_version,
        "state": run.state,
        "completed_at": run.completed_at,
        "response": run.response,
        "labels": run.labels,
        "entries": [_entry_json(e) for e in run.entries],
        "message_ids": run.message_ids,
        "dlq_id": run.dlq_id,
        "failure": None if run.failure is None else dataclasses.asdict(run.failure),
        "failure_retries": run.failure_retries,
        "errors": run.errors,
        "error_step": run.error_step,
        "failed_message": run.failed_message,
        "early_events": {k: codec.b64e(v) for k, v in run.early_events.items()},
        "order": run.order,
        "retries": run.retries,
        "retry_delay": codec.retry_delay(run.retry_delay),
        "flow_control": codec.flow(run.flow_control),
        "failure_callback": codec.callback(run.failure_callback),
        "trigger_headers": [list(pair) for pair in run.trigger_headers],
        "invoker": run.invoker,
        "tracked": tracked,
    }


def _restore_run(
    runs: WorkflowRuns, backend: Backend, user: str, run_id: str, data: dict[str, Any], body: bytes
) -> None:
    from .runs import Tracked

    run = _load_run(backend, user, run_id, data, body)
    tracked = {
        mid: Tracked(run_id, call_type, tuple((k, v) for k, v in raw), failure_fields)
        for mid, (call_type, raw, failure_fields) in data["tracked"].items()
    }
    runs.restore(run, tracked)


def _load_run(backend: Backend, user: str, run_id: str, data: dict[str, Any], body: bytes) -> Run:
    failure = data["failure"]
    return Run(
        id=run_id,
        user=backend.users[user],
        url=data["url"],
        created_at=data["created_at"],
        initial_body=body,
        sdk_version=data["sdk_version"],
        state=data["state"],
        completed_at=data["completed_at"],
        response=data["response"],
        labels=data["labels"],
        entries=[_load_entry(e) for e in data["entries"]],
        message_ids=data["message_ids"],
        dlq_id=data["dlq_id"],
        failure=None if failure is None else FailureCall(**failure),
        failure_retries=data["failure_retries"],
        errors=data["errors"],
        error_step=data["error_step"],
        failed_message=data["failed_message"],
        early_events={k: codec.b64d(v) for k, v in data["early_events"].items()},
        order=data["order"],
        retries=data["retries"],
        retry_delay=codec.load_retry_delay(data["retry_delay"]),
        flow_control=codec.load_flow(data["flow_control"]),
        failure_callback=codec.load_callback(data["failure_callback"]),
        trigger_headers=tuple((k, v) for k, v in data["trigger_headers"]),
        invoker=data["invoker"],
    )


# -- waiters ------------------------------------------------------------------------------------
def _waiter_json(waiter: Waiter) -> dict[str, Any]:
    timer: Timer | None = waiter.timer
    return {
        "event_id": waiter.event_id,
        "run_id": waiter.run_id,
        "url": waiter.url,
        "deadline": waiter.deadline,
        "timeout": waiter.timeout,
        "headers": [list(pair) for pair in waiter.headers],
        "step": waiter.step,
        "created_at": waiter.created_at,
        "timeout_url": waiter.timeout_url,
        "timeout_body": waiter.timeout_body,
        "timeout_headers": waiter.timeout_headers,
        "order": [] if timer is None else list(timer.order),
    }


def _load_waiter(backend: Backend, user: str, data: dict[str, Any]) -> Waiter:
    return Waiter(
        event_id=data["event_id"],
        run_id=data["run_id"],
        user=backend.users[user],
        url=data["url"],
        deadline=data["deadline"],
        timeout=data["timeout"],
        headers=[(k, v) for k, v in data["headers"]],
        step=data["step"],
        created_at=data["created_at"],
        timeout_url=data["timeout_url"],
        timeout_body=data["timeout_body"],
        timeout_headers=data["timeout_headers"],
    )
