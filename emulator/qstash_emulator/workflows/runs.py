"""Workflow runs: one per run id, fed by the engine's hooks as the SDKs publish their steps.

The engine stays a plain message engine. This resource follows its messages through four named
hooks: `publish_checks` (a step for a run that is over is refused before anything is created),
`created_hooks` (a run's message joins the run; a step's body becomes the run's step list),
`failed_hooks` (a step out of retries fails the run) and the delivery `listeners` (the failure
function's outcome). Waits and notifies live here too; their timeouts are timers on the one
scheduler, so a one-week wait ends in one virtual `advance`.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from ..core.clock import ms
from ..core.engine import Engine
from ..core.errors import ApiError, bad_request, not_found
from ..core.state import Delivered, DlqEntry, Message, Response
from ..core.users import User
from ..parsing import header_names as h
from ..parsing.durations import DurationError, parse_duration
from ..parsing.publish_headers import MessageSpec, is_url, parse_message_headers
from . import protocol as p
from .model import (
    FAILURE_CALL,
    FROM_CALLBACK,
    RUN_CANCELED,
    RUN_FAILED,
    RUN_SUCCESS,
    STEP,
    TO_CALLBACK,
    Entry,
    FailureCall,
    Run,
    Waiter,
)

__all__ = ["Tracked", "WorkflowRuns", "waiter_json"]


@dataclass(slots=True)
class Tracked:
    """What the runs know about one of their messages (the engine's messages carry nothing)."""

    run_id: str
    call_type: str
    raw: tuple[tuple[str, str], ...] = ()
    failure_fields: bool = False  # its failure callback gets the run's fields


class WorkflowRuns:
    """Every user's workflow runs and waiters (the backend builds one and wires its hooks)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._runs: dict[str, dict[str, Run]] = {}
        self._waiters: dict[str, dict[str, list[Waiter]]] = {}
        self._order = 0
        self._tracked: dict[str, Tracked] = {}  # message id -> its run

    def reset(self) -> None:
        """Forget every run and waiter (their timers are cancelled)."""
        for by_event in self._waiters.values():
            for waiters in by_event.values():
                for waiter in waiters:
                    if waiter.timer is not None:
                        waiter.timer.cancel()
        self._waiters.clear()
        self._runs.clear()
        self._tracked.clear()
        self._order = 0

    # -- lookups ------------------------------------------------------------------------------
    def runs(self, user: User) -> list[Run]:
        """Newest first (creation time, then creation order)."""
        found = self._runs.get(user.name, {}).values()
        return sorted(found, key=lambda r: (r.created_at, r.order), reverse=True)

    def find(self, user: User, run_id: str) -> Run | None:
        """The user's run with this id, if any."""
        return self._runs.get(user.name, {}).get(run_id)

    def get(self, user: User, run_id: str) -> Run:
        """The user's run with this id; 404 if there is none."""
        run = self.find(user, run_id)
        if run is None:
            raise not_found(f"workflow run {run_id} not found")
        return run

    def run_of(self, message: Message) -> Run | None:
        """The run a message belongs to, if any."""
        tracked = self._tracked.get(message.id)
        return None if tracked is None else self.find(message.user, tracked.run_id)

    def _call_type(self, message: Message) -> str | None:
        tracked = self._tracked.get(message.id)
        return None if tracked is None else tracked.call_type

    # -- engine hooks -------------------------------------------------------------------------
    def check_publish(self, user: User, spec: MessageSpec) -> None:
        """A publish check: refuse a step for a run that is over or unknown (400)."""
        lower = p.lower_map(spec.raw)
        run_id = lower.get(p.RUN_ID)
        if run_id is None:
            return
        if not run_id.strip():
            raise bad_request("invalid Upstash-Workflow-RunId header: empty")
        if lower.get(p.INIT, "").lower() == "true":
            return
        run = self.find(user, run_id)
        if run is None:
            raise bad_request(f"workflow run {run_id} does not exist: start it with Init true")
        if not run.active:
            # The SDKs read a 400 here as "the run was cancelled or is over" and stop quietly.
            raise bad_request(f"workflow run {run_id} is {run.state}: it takes no more steps")

    def message_created(self, message: Message, spec: MessageSpec, source: Message | None) -> None:
        """A created hook: the message joins its run; a step's body becomes the step list."""
        if source is not None:
            self._created_callback(message, source)
            return
        lower = p.lower_map(spec.raw)
        run_id = lower.get(p.RUN_ID)
        if run_id is None:
            return
        now = self.engine.clock.now()
        user = message.user
        call_type = lower.get(p.CALL_TYPE, STEP)
        # A call's headers are the caller's own; a step's carry copies of the last delivery's.
        p.clean(message.headers, carried=call_type != TO_CALLBACK)
        run = self.find(user, run_id)
        if lower.get(p.INIT, "").lower() == "true":
            if run is None or not run.active:
                invoker = None
                if lower.get(p.INVOKE, "").lower() == "true":
                    # context.invoke: the body wraps the invoked run's payload and the invoker
                    invoker = p.invoke_request(message.body)
                    if invoker is not None:
                        body = invoker.get("body")
                        message.body = body.encode() if isinstance(body, str) else b""
                self._order += 1
                run = Run(
                    id=run_id,
                    user=user,
                    url=lower.get(p.URL, message.url),
                    created_at=now,
                    initial_body=message.body,
                    sdk_version=lower.get(p.SDK_VERSION)
                    or lower.get(p.FORWARDED_SDK_VERSION)
                    or "1",
                    labels=list(message.labels),
                    order=self._order,
                    retries=message.max_retries if "upstash-retries" in spec.given else None,
                    retry_delay=message.retry_delay,
                    flow_control=message.flow_control,
                    failure_callback=copy.deepcopy(message.failure_callback),
                    trigger_headers=spec.raw,
                    invoker=invoker,
                )
                self._runs.setdefault(user.name, {})[run_id] = run
                run.entries.append(Entry(message.id, STEP, message.body, now, message.headers))
            # An Init for a run already going is delivered as its start again.
            entries = run.entries[:1]
        elif run is None:
            return  # refused by check_publish; a message made without a publish (none today)
        elif call_type == TO_CALLBACK:
            call = {
                "url": message.url,
                "method": message.method,
                "headers": message.headers,
                "body": message.body,
            }
            run.entries.append(
                Entry(
                    message.id,
                    TO_CALLBACK,
                    message.body,
                    now,
                    message.headers,
                    message.max_retries,
                    call,
                )
            )
            entries = run.entries
        else:
            run.entries.append(
                Entry(message.id, STEP, message.body, now, message.headers, message.max_retries)
            )
            entries = run.entries
        run.message_ids.append(message.id)
        self._tracked[message.id] = Tracked(run.id, call_type, spec.raw)
        if call_type == TO_CALLBACK:
            # The call goes to the third party as it is; its callback comes back into the run.
            if message.callback is not None:
                p.clean(message.callback.headers)
                for key, value in p.prefixed_as_workflow(spec.raw, "upstash-callback-"):
                    h.add(message.callback.headers, key, value)
                p.add_missing(message.callback.headers, p.CREATED_AT_OUT, str(ms(run.created_at)))
            return
        message.body = p.step_list(entries)
        self._add_run_headers(run, message.headers)
        inherited = self._inherit(run, message, spec)
        if run.entries[-1].message_id == message.id:
            run.entries[-1].max_retries = message.max_retries
        raw = run.trigger_headers if inherited else spec.raw
        self._wire_failure(run, message, raw, "upstash-failure-callback-")

    def _inherit(self, run: Run, message: Message, spec: MessageSpec) -> bool:
        """Give a step that sets none of its own the trigger's settings.

        Retries, retry delay, flow control and the failure callback. True: the failure
        callback is the trigger's.
        """
        if message.id == run.entries[0].message_id:
            return False  # the trigger itself
        given = spec.given
        if "upstash-retries" not in given and run.retries is not None:
            message.max_retries = run.retries
        if "upstash-retry-delay" not in given and run.retry_delay is not None:
            message.retry_delay = run.retry_delay
        if "upstash-flow-control-key" not in given and run.flow_control is not None:
            message.flow_control = run.flow_control
        if message.failure_callback is None and run.failure_callback is not None:
            message.failure_callback = copy.deepcopy(run.failure_callback)
            return True
        return False

    def _add_run_headers(self, run: Run, headers: h.Headers) -> None:
        p.add_missing(headers, p.RUN_ID_OUT, run.id)
        p.add_missing(headers, p.URL_OUT, run.url)
        p.add_missing(headers, p.CREATED_AT_OUT, str(ms(run.created_at)))
        p.add_missing(headers, p.SDK_VERSION_OUT, run.sdk_version)

    def _wire_failure(
        self, run: Run, message: Message, raw: tuple[tuple[str, str], ...], prefix: str
    ) -> None:
        """The failure callback goes out with the run's headers and the body the SDKs parse."""
        cfg = message.failure_callback
        if cfg is None:
            return
        p.clean(cfg.headers)
        for key, value in p.prefixed_as_workflow(raw, prefix):
            h.add(cfg.headers, key, value)
        p.add_missing(cfg.headers, p.RUN_ID_OUT, run.id)
        p.add_missing(cfg.headers, p.URL_OUT, run.url)
        p.add_missing(cfg.headers, p.CREATED_AT_OUT, str(ms(run.created_at)))

        tracked = self._tracked.get(message.id)
        if tracked is not None:
            tracked.failure_fields = True

    def callback_body(self, message: Message, body: dict[str, Any], tag: str) -> None:
        """The failure function's fields, on the failure callback of a run's message."""
        tracked = self._tracked.get(message.id)
        if tag != "failure" or tracked is None or not tracked.failure_fields:
            return
        run = self.find(message.user, tracked.run_id)
        if run is None:
            return
        body["workflowRunId"] = run.id
        body["workflowCreatedAt"] = ms(run.created_at)
        body["sourceBody"] = p.b64(run.initial_body)  # the failure function's payload
        body["url"] = run.url

    def _created_callback(self, message: Message, source: Message) -> None:
        run = self.run_of(source)
        if run is None:
            return
        now = self.engine.clock.now()
        run.message_ids.append(message.id)
        tracked = self._tracked[message.id] = Tracked(run.id, FAILURE_CALL)
        if message.kind == "failure_callback":
            try:
                sent = json.loads(message.body)
            except ValueError:
                sent = {}
            run.failure = FailureCall(
                message_id=message.id,
                url=message.url,
                fail_status=int(sent.get("status") or 0),
                fail_headers=sent.get("header") or {},
                fail_body=_b64_text(sent.get("body") or ""),
            )
            return
        source_tracked = self._tracked.get(source.id)
        if source_tracked is None or source_tracked.call_type != TO_CALLBACK:
            tracked.call_type = message.kind
            return
        # A context.call's answer: delivered to the workflow as the callback QStash sends.
        tracked.call_type = FROM_CALLBACK
        run.entries.append(Entry(message.id, FROM_CALLBACK, message.body, now, message.headers))
        raw = source_tracked.raw
        pairs = p.callback_failure_pairs(raw)
        if pairs and message.failure_callback is None:
            try:
                nested = parse_message_headers(pairs, message.user.quota)
            except ApiError:
                nested = None
            if nested is not None and nested.failure_callback is not None:
                message.failure_callback = nested.failure_callback
                self._wire_failure(run, message, raw, "upstash-callback-failure-callback-")

    def message_failed(self, message: Message, response: Response, dlq_id: str | None) -> None:
        """A failed hook: a run's step out of retries fails the run."""
        run = self.run_of(message)
        if run is None:
            return
        call_type = self._call_type(message)
        if call_type == FAILURE_CALL:
            if run.failure is not None and run.failure.message_id == message.id:
                run.failure.state = "CALLBACK_FAIL"
            return
        if call_type == TO_CALLBACK:
            return  # the callback carries the failed call's answer into the run
        if run.active:
            run.dlq_id = dlq_id
            run.failed_message = message.id
            self._end(run, RUN_FAILED, None)

    def delivered(self, record: Delivered) -> None:
        """A delivery listener: failed attempts, and the failure function's answer."""
        message, response = record.message, record.response
        run = self.run_of(message)
        if run is None or response is None:
            return
        if self._call_type(message) != FAILURE_CALL:
            if not response.ok:
                self._failed_attempt(run, record, response)
            return
        if run.failure is None or run.failure.message_id != message.id:
            return
        run.failure.response_status = response.status
        run.failure.response_body = response.body.decode("utf-8", "replace")
        if response.ok:
            run.failure.state = "CALLBACK_SUCCESS"

    def _failed_attempt(self, run: Run, record: Delivered, response: Response) -> None:
        """A failed attempt of a run's message, for the logs' next steps."""
        status = response.status or 0
        run.errors.setdefault(record.message.id, []).append(
            {
                "error": response.error or f"{status} status from the workflow endpoint",
                "body": response.body.decode("utf-8", "replace"),
                "headers": response.headers,
                "status": status,
                "time": ms(record.time),
            }
        )
        for key, values in response.headers.items():
            if key.lower() == "upstash-error-step-name" and values:
                run.error_step[record.message.id] = values[0]

    # -- run actions --------------------------------------------------------------------------
    def finish(self, user: User, run_id: str, *, cancel: bool, result: str | None = None) -> None:
        """End a run (DELETE /v2/workflows/runs/{id}).

        The SDK ends its run with cancel=false and the route's result; a user cancels it with
        cancel=true (its pending messages are cancelled).
        """
        run = self.get(user, run_id)
        if not run.active:
            if cancel:
                raise bad_request(f"workflow run {run_id} is {run.state}: nothing to cancel")
            return
        self._end(run, RUN_CANCELED if cancel else RUN_SUCCESS, result)

    def cancel_many(self, user: User, runs: list[Run]) -> int:
        """Cancel the runs still going; how many were."""
        count = 0
        for run in runs:
            if run.active:
                self._end(run, RUN_CANCELED, None)
                count += 1
        return count

    def _end(self, run: Run, state: str, result: str | None) -> None:
        run.state = state
        run.completed_at = self.engine.clock.now()
        if result:
            run.response = result
        self._drop_waiters(run)
        if state == RUN_CANCELED:
            messages = self.engine.state(run.user).messages
            pending = [messages[m] for m in run.message_ids if m in messages]
            self.engine.cancel_many(run.user, pending)
        if run.invoker is not None:
            self._answer_invoker(run)

    def _answer_invoker(self, run: Run) -> None:
        """Give the invoker of a run started by `context.invoke` its result.

        The invoker's Invoke step gets the route's response (or isFailed / isCanceled),
        published like any step.
        """
        invoker = run.invoker or {}
        parent = self.find(run.user, str(invoker.get("workflowRunId")))
        step = invoker.get("step")
        headers = invoker.get("headers")
        url = invoker.get("workflowUrl")
        if parent is None or not parent.active or not isinstance(step, dict):
            return
        if not isinstance(url, str) or not p.is_header_map(headers):
            return
        out = {
            "body": run.response,
            "isFailed": run.state == RUN_FAILED,
            "isCanceled": run.state == RUN_CANCELED,
        }
        result = {**step, "stepType": "Invoke", "out": json.dumps(out, separators=(",", ":"))}
        try:
            spec = parse_message_headers(h.flat(headers), run.user.quota)
        except ApiError:
            return  # the invoker sent headers QStash would refuse: nothing to answer with
        body = json.dumps(result, separators=(",", ":")).encode()
        self.engine.publish_url(run.user, url, spec, body, caller_ip="127.0.0.1")

    # -- the workflow DLQ ----------------------------------------------------------------------
    def dlq(self, user: User) -> list[tuple[DlqEntry, Run]]:
        """The DLQ entries of failed runs (the message that failed each), newest first."""
        found = []
        for entry in self.engine.dlq_entries(user):
            run = self.run_of(entry.message)
            if run is not None and run.dlq_id == entry.dlq_id:
                found.append((entry, run))
        return found

    def restart(
        self, user: User, entry: DlqEntry, run: Run, overrides: list[tuple[str, str]]
    ) -> dict[str, Any]:
        """A new run from the start: the trigger again, with a new run id."""
        new_id = self._new_run_id()
        pairs = _override(_with_run_id(run.trigger_headers, new_id), overrides)
        spec = parse_message_headers(pairs, user.quota)
        self.engine.publish_url(user, run.url, spec, run.initial_body, caller_ip="127.0.0.1")
        self.engine.dlq_delete(user, [entry.dlq_id])
        return self._started(user, new_id)

    def resume(
        self, user: User, entry: DlqEntry, run: Run, overrides: list[tuple[str, str]]
    ) -> dict[str, Any]:
        """Start a new run that keeps the failed run's steps and runs the failed one again.

        A run that failed on its first step, or on a call's answer, starts over instead.
        """
        failed = self._tracked.get(entry.message.id)
        index = next(
            (i for i, e in enumerate(run.entries) if e.message_id == entry.message.id), None
        )
        if failed is None or failed.call_type != STEP or not index:
            return self.restart(user, entry, run, overrides)
        new_id = self._new_run_id()
        trigger = _override(_with_run_id(run.trigger_headers, new_id), overrides)
        spec = parse_message_headers(trigger, user.quota)  # checks the overrides first
        self._order += 1
        now = self.engine.clock.now()
        resumed = Run(
            id=new_id,
            user=user,
            url=run.url,
            created_at=now,
            initial_body=run.initial_body,
            sdk_version=run.sdk_version,
            labels=list(run.labels),
            entries=[copy.copy(e) for e in run.entries[:index]],
            order=self._order,
            retries=spec.retries if "upstash-retries" in spec.given else run.retries,
            retry_delay=run.retry_delay,
            flow_control=spec.flow_control or run.flow_control,
            failure_callback=copy.deepcopy(run.failure_callback),
            trigger_headers=tuple(trigger),
        )
        self._runs.setdefault(user.name, {})[new_id] = resumed
        again = parse_message_headers(
            _override(_with_run_id(failed.raw, new_id), overrides), user.quota
        )
        message = entry.message
        self.engine.publish_url(
            user, message.url, again, run.entries[index].body, caller_ip=message.caller_ip
        )
        self.engine.dlq_delete(user, [entry.dlq_id])
        return self._started(user, new_id)

    def retry_failure(self, user: User, entry: DlqEntry, run: Run) -> dict[str, Any]:
        """Send a failed run's failure callback again (its failure function failed)."""
        message = entry.message
        cfg = message.failure_callback
        if cfg is None or run.failure is None:
            raise bad_request(f"workflow run {run.id} has no failure function or failure URL")
        if run.failure.state != "CALLBACK_FAIL":
            raise bad_request(
                f"the failure callback of workflow run {run.id} is {run.failure.state}: "
                "only a failed one is retried"
            )
        run.failure_retries += 1
        fields = self.engine.callback_body(message, entry.response, entry.dlq_id)
        self.callback_body(message, fields, "failure")
        spec = MessageSpec(
            method=cfg.method,
            headers={**{k: list(v) for k, v in cfg.headers.items()}},
            retries=cfg.retries if cfg.retries is not None else message.max_retries,
            retry_delay=cfg.retry_delay,
            timeout=cfg.timeout,
        )
        h.add(spec.headers, "Content-Type", "application/json")
        again = self.engine.new_message(
            user,
            cfg.url,
            spec,
            json.dumps(fields, separators=(",", ":")).encode(),
            caller_ip=message.caller_ip,
            message_id=self.engine.ids.derived(
                message.id, f"failure-retry:{run.failure_retries}", "msg_"
            ),
            source=message,
            kind="failure_callback",
        )
        self.engine.schedule(again)
        return {"workflowRunId": run.id, "workflowCreatedAt": ms(run.created_at)}

    def _new_run_id(self) -> str:
        return self.engine.ids.next("workflow_run", "wfr_", 21)

    def _started(self, user: User, run_id: str) -> dict[str, Any]:
        run = self.get(user, run_id)
        return {"workflowRunId": run.id, "workflowCreatedAt": ms(run.created_at)}

    # -- waits and notifies -------------------------------------------------------------------
    def wait(
        self, user: User, event_id: str, headers: list[tuple[str, str]], body: Any
    ) -> dict[str, Any]:
        """POST /v2/wait/{eventId}: the run waits for the event or its timeout."""
        if not event_id.strip():
            raise bad_request("event id cannot be empty")
        if not isinstance(body, dict):
            raise bad_request("wait body must be a JSON object with url, timeout and step")
        url, step, timeout = body.get("url"), body.get("step"), body.get("timeout")
        if not isinstance(url, str) or not is_url(url):
            raise bad_request("wait body needs url: the workflow URL to call upon notify")
        if not isinstance(step, dict):
            raise bad_request("wait body needs step: the waiting step")
        seconds = _timeout_seconds(timeout)
        timeout_url = body.get("timeoutUrl") or url
        if not isinstance(timeout_url, str) or not is_url(timeout_url):
            raise bad_request("invalid timeoutUrl: it must start with http:// or https://")
        timeout_headers = body.get("timeoutHeaders")
        if timeout_headers is not None and not p.is_header_map(timeout_headers):
            raise bad_request("timeoutHeaders must map header names to lists of strings")
        kept = [
            (k, v)
            for k, v in headers
            if k.lower().startswith("upstash-") or k.lower() == "content-type"
        ]
        run_id = p.lower_map(kept).get(p.RUN_ID)
        if not run_id:
            raise bad_request("wait needs the Upstash-Workflow-RunId header of the waiting run")
        run = self.find(user, run_id)
        if run is None or not run.active:
            state = "not found" if run is None else run.state
            raise bad_request(f"workflow run {run_id} is {state}: it cannot wait")
        # Both continuations are parsed now, so a bad header is refused before any change.
        parse_message_headers(kept, user.quota)
        if timeout_headers:
            parse_message_headers(h.flat(timeout_headers), user.quota)
        now = self.engine.clock.now()
        waiter = Waiter(
            event_id=event_id,
            run_id=run_id,
            user=user,
            url=url,
            deadline=now + seconds,
            timeout=str(timeout),
            headers=kept,
            step=step,
            created_at=now,
            timeout_url=timeout_url,
            timeout_body=body.get("timeoutBody"),
            timeout_headers=timeout_headers,
        )
        early = run.early_events.pop(event_id, None)
        if early is not None:
            return {"messageId": self._resume(waiter, early)}
        self._waiters.setdefault(user.name, {}).setdefault(event_id, []).append(waiter)

        async def time_out() -> None:
            self._timed_out(waiter)

        order = (self.engine.ids.counter("order"),)
        waiter.timer = self.engine.scheduler.call_at(waiter.deadline, time_out, order)
        return {}

    def notify(
        self, user: User, event_id: str, data: bytes, run_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Deliver the event to every run waiting for it (only `run_id`'s, if given).

        Without a waiter a plain notify is lost; a run-scoped one is kept for the run's next
        wait.
        """
        by_event = self._waiters.get(user.name, {})
        waiting = by_event.get(event_id, [])
        chosen = [w for w in waiting if run_id is None or w.run_id == run_id]
        rest = [w for w in waiting if w not in chosen]
        if rest:
            by_event[event_id] = rest
        else:
            by_event.pop(event_id, None)
        answers = []
        for waiter in chosen:
            if waiter.timer is not None:
                waiter.timer.cancel()
            answers.append(
                {
                    "waiter": waiter_json(waiter),
                    "messageId": self._resume(waiter, data),
                    "error": "",
                }
            )
        if run_id is not None and not chosen:
            run = self.find(user, run_id)
            if run is not None and run.active:
                run.early_events[event_id] = data
        return answers

    def waiting_for(self, run: Run) -> list[str]:
        """The events the run waits for now, sorted."""
        by_event = self._waiters.get(run.user.name, {})
        return sorted(
            e for e, waiters in by_event.items() if any(w.run_id == run.id for w in waiters)
        )

    def waiters(self, user: User, event_id: str) -> list[Waiter]:
        """Who waits for the event now."""
        return list(self._waiters.get(user.name, {}).get(event_id, []))

    def _resume(self, waiter: Waiter, data: bytes) -> str:
        step = {
            **waiter.step,
            "out": p.b64(data),
            "waitEventId": waiter.event_id,
            "waitTimeout": False,
            "waitTimeoutDuration": waiter.timeout,
            "waitTimeoutDeadline": ms(waiter.deadline),
        }
        return self._continue(waiter, waiter.url, waiter.headers, step)

    def _timed_out(self, waiter: Waiter) -> None:
        by_event = self._waiters.get(waiter.user.name, {})
        waiting = by_event.get(waiter.event_id, [])
        if waiter not in waiting:
            return
        waiting.remove(waiter)
        if not waiting:
            by_event.pop(waiter.event_id, None)
        run = self.find(waiter.user, waiter.run_id)
        if run is None or not run.active:
            return
        step = {k: v for k, v in waiter.step.items() if k != "out"}
        step.update(
            waitEventId=waiter.event_id,
            waitTimeout=True,
            waitTimeoutDuration=waiter.timeout,
            waitTimeoutDeadline=ms(waiter.deadline),
        )
        headers = h.flat(waiter.timeout_headers) if waiter.timeout_headers else waiter.headers
        self._continue(waiter, waiter.timeout_url or waiter.url, headers, step)

    def _continue(
        self, waiter: Waiter, url: str, headers: list[tuple[str, str]], step: dict[str, Any]
    ) -> str:
        """The run goes on: its wait step, now with a result, is published like any step."""
        spec = parse_message_headers(headers, waiter.user.quota)
        body = json.dumps(step, separators=(",", ":")).encode()
        answer = self.engine.publish_url(waiter.user, url, spec, body, caller_ip="127.0.0.1")
        return str(answer["messageId"])

    def _drop_waiters(self, run: Run) -> None:
        by_event = self._waiters.get(run.user.name, {})
        for event_id in list(by_event):
            kept = []
            for waiter in by_event[event_id]:
                if waiter.run_id == run.id:
                    if waiter.timer is not None:
                        waiter.timer.cancel()
                else:
                    kept.append(waiter)
            if kept:
                by_event[event_id] = kept
            else:
                del by_event[event_id]


def _with_run_id(pairs: tuple[tuple[str, str], ...], run_id: str) -> list[tuple[str, str]]:
    """The headers with every run id (the run's and its failure callback's) set to `run_id`."""
    names = (p.RUN_ID, "upstash-failure-callback-workflow-runid")
    return [(k, run_id if k.lower() in names else v) for k, v in pairs]


def _override(
    pairs: list[tuple[str, str]], overrides: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The headers with each override replacing every header of its name."""
    names = {k.lower() for k, _ in overrides}
    return [(k, v) for k, v in pairs if k.lower() not in names] + overrides


def waiter_json(waiter: Waiter) -> dict[str, Any]:
    """The Waiter shape of the QStash docs (deadline in unix seconds)."""
    out: dict[str, Any] = {
        "url": waiter.url,
        "deadline": int(waiter.deadline),
        "headers": h.from_pairs(waiter.headers),
        "timeoutUrl": waiter.timeout_url,
    }
    if waiter.timeout_body is not None:
        out["timeoutBody"] = waiter.timeout_body
    if waiter.timeout_headers is not None:
        out["timeoutHeaders"] = waiter.timeout_headers
    return out


def _timeout_seconds(value: Any) -> float:
    if isinstance(value, bool) or value is None:
        raise bad_request("wait body needs timeout: a duration such as '7d' or seconds")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except DurationError as exc:
            raise bad_request(f"invalid wait timeout: {exc}") from None
    else:
        raise bad_request("wait timeout must be a duration string or a number of seconds")
    if seconds <= 0:
        raise bad_request("wait timeout must be positive")
    return seconds


def _b64_text(data: str) -> str:
    import base64
    import binascii

    try:
        return base64.b64decode(data).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return data
