"""The workflow DLQ: the message each failed run failed on, and what can be done with it.

Resume starts a new run that keeps the failed run's steps and sends the failed step again;
restart starts a new run from the trigger; the failure callback can be sent again.
"""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any

from ..core.clock import ms
from ..core.errors import bad_request
from ..core.state import DlqEntry
from ..core.users import User
from ..parsing import header_names as h
from ..parsing.publish_headers import MessageSpec, parse_message_headers
from . import protocol as p
from .model import STEP, Run

if TYPE_CHECKING:
    from .runs import WorkflowRuns

__all__ = ["WorkflowDlq"]


class WorkflowDlq:
    """DLQ actions over the runs (the engine keeps the entries)."""

    def __init__(self, runs: WorkflowRuns) -> None:
        self.runs = runs
        self.engine = runs.engine

    def entries(self, user: User) -> list[tuple[DlqEntry, Run]]:
        """The DLQ entries of failed runs (the message that failed each), newest first."""
        found = []
        for entry in self.engine.dlq_entries(user):
            run = self.runs.run_of(entry.message)
            if run is not None and run.dlq_id == entry.dlq_id:
                found.append((entry, run))
        return found

    def restart(
        self, user: User, entry: DlqEntry, run: Run, overrides: list[tuple[str, str]]
    ) -> dict[str, Any]:
        """A new run from the start: the trigger again, with a new run id."""
        new_id = self.runs.new_run_id()
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
        failed = self.runs.tracked(entry.message.id)
        index = next(
            (i for i, e in enumerate(run.entries) if e.message_id == entry.message.id), None
        )
        if failed is None or failed.call_type != STEP or not index:
            return self.restart(user, entry, run, overrides)
        new_id = self.runs.new_run_id()
        trigger = _override(_with_run_id(run.trigger_headers, new_id), overrides)
        spec = parse_message_headers(trigger, user.quota)  # checks the overrides first
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
            order=self.runs.next_order(),
            retries=spec.retries if "upstash-retries" in spec.given else run.retries,
            retry_delay=run.retry_delay,
            flow_control=spec.flow_control or run.flow_control,
            failure_callback=copy.deepcopy(run.failure_callback),
            trigger_headers=tuple(trigger),
        )
        self.runs.add(resumed)
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
        self.runs.saved(run)
        fields = self.engine.callback_body(message, entry.response, entry.dlq_id)
        self.runs.callback_body(message, fields, "failure")
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

    def _started(self, user: User, run_id: str) -> dict[str, Any]:
        run = self.runs.get(user, run_id)
        return {"workflowRunId": run.id, "workflowCreatedAt": ms(run.created_at)}


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
