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
from collections import deque
from dataclasses import dataclass
from typing import Any

from ..core.clock import ms
from ..core.engine import Engine
from ..core.errors import ApiError, bad_request, not_found
from ..core.state import Delivered, Message, Response
from ..core.users import User
from ..parsing import header_names as h
from ..parsing.publish_headers import MessageSpec, parse_message_headers
from . import persist
from . import protocol as p
from .dlq import WorkflowDlq
from .events import WorkflowEvents
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
)

__all__ = ["Tracked", "WorkflowRuns"]


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
        self.events = WorkflowEvents(engine, self.find)
        self.dlq = WorkflowDlq(self)
        self._order = 0
        self._tracked: dict[str, Tracked] = {}  # message id -> its run
        # Finished runs each user keeps (the newest), as the log history keeps its newest
        # events: a tenth of the history's entries, at least 100. A failed run the workflow
        # DLQ still holds is kept whatever its age.
        self.keep_finished = max(100, engine.retention.max_entries // 10)
        # user -> (run id, when it ended), in the order runs ended
        self._finished: dict[str, deque[tuple[str, float | None]]] = {}

    def reset(self) -> None:
        """Forget every run and waiter (their timers are cancelled)."""
        self.events.reset()
        self._runs.clear()
        self._tracked.clear()
        self._finished.clear()
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

    def tracked(self, message_id: str) -> Tracked | None:
        """What the runs know of a message (None: not a run's)."""
        return self._tracked.get(message_id)

    def add(self, run: Run) -> None:
        """Keep a run made elsewhere (a resumed run)."""
        self._runs.setdefault(run.user.name, {})[run.id] = run
        self.saved(run)

    def saved(self, run: Run) -> None:
        """Tell the store the run changed (written as it is at the end of the loop turn)."""
        self.engine.store.put(persist.RUN, run.user.name, run.id, run)

    def restore(self, run: Run, tracked: dict[str, Tracked]) -> None:
        """Put back a saved run and what it knew of its messages (startup, `persist`)."""
        self._runs.setdefault(run.user.name, {})[run.id] = run
        self._tracked.update(tracked)
        self._order = max(self._order, run.order)
        if not run.active:
            self._retire(run)

    def next_order(self) -> int:
        """The creation order of the next run (ties in the listing)."""
        self._order += 1
        return self._order

    def new_run_id(self) -> str:
        """A run id from the seed."""
        return self.engine.ids.next("workflow_run", "wfr_", 21)

    def _call_type(self, message: Message) -> str | None:
        tracked = self._tracked.get(message.id)
        return None if tracked is None else tracked.call_type

    # -- engine hooks -------------------------------------------------------------------------
    def check_publish(self, user: User, spec: MessageSpec) -> None:
        """A publish check: refuse a step for a run that is over or unknown (400)."""
        if p.RUN_ID not in spec.given:  # most messages: the parser already named the headers
            return
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
        if p.RUN_ID not in spec.given:
            return
        lower = p.lower_map(spec.raw)
        run_id = lower.get(p.RUN_ID)
        if run_id is None:
            return
        now = self.engine.clock.now()
        user = message.user
        call_type = lower.get(p.CALL_TYPE, STEP)
        # A call's headers are the caller's own; a step's carry copies of the last delivery's.
        # Cleaned in a copy: a message's headers may be shared with messages that have the same.
        own = {name: list(values) for name, values in message.headers.items()}
        p.clean(own, carried=call_type != TO_CALLBACK)
        message.headers = own
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
                    order=self.next_order(),
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
        self.saved(run)
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
        self.saved(run)
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
                self.saved(run)
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
        self.saved(run)

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
        self.saved(run)

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
        self.saved(run)
        self._retire(run)
        self.events.drop(run)
        if state == RUN_CANCELED:
            messages = self.engine.state(run.user).messages
            pending = [messages[m] for m in run.message_ids if m in messages]
            self.engine.cancel_many(run.user, pending)
        if run.invoker is not None:
            self._answer_invoker(run)

    def _retire(self, run: Run) -> None:
        """Count a finished run, and forget the oldest finished ones past `keep_finished`."""
        ended = self._finished.setdefault(run.user.name, deque())
        ended.append((run.id, run.completed_at))
        runs = self._runs.get(run.user.name, {})
        dlq = self.engine.state(run.user).dlq
        while len(ended) > self.keep_finished:
            run_id, at = ended.popleft()
            old = runs.get(run_id)
            if old is None or old.active or old.completed_at != at:
                continue  # gone already, or resumed since (it counts from its new end)
            if old.dlq_id is not None and old.dlq_id in dlq:
                continue  # the workflow DLQ may still resume it
            del runs[old.id]
            for message_id in old.message_ids:
                self._tracked.pop(message_id, None)
            self.engine.store.delete(persist.RUN, old.user.name, old.id)

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


def _b64_text(data: str) -> str:
    import base64
    import binascii

    try:
        return base64.b64decode(data).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return data
