"""What the workflow runs pages show, read from the backend's `WorkflowRuns`.

As the REST handlers read it: `GET /v2/workflows/events` renders the same steps with
`render.step_groups`.

A step's times come from the run's entries and from the dashboard's message index (when each
of the run's messages was attempted): a step ran during the delivery before it, a sleep lasts
from its step until its message is delivered, a wait from its start until the notify or timeout.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from ..core.engine import Engine
from ..core.state import ACTIVE, DELIVERED
from ..parsing.durations import DurationError, parse_duration
from ..workflows.events import WorkflowEvents
from ..workflows.model import (
    RUN_CANCELED,
    RUN_FAILED,
    RUN_STARTED,
    RUN_SUCCESS,
    Run,
    Waiter,
)
from ..workflows.render import step_groups
from .views import PAGE_SIZE, UserIndex, body_text, iso, page_number, span

__all__ = [
    "RUN_STATES",
    "RunPage",
    "RunQuery",
    "RunRow",
    "TimelineStep",
    "run_badge",
    "run_page",
    "run_waiters",
    "timeline",
]

# Filterable run states, in the order the page lists them: (state, label).
RUN_STATES = [
    (RUN_STARTED, "Running"),
    (RUN_SUCCESS, "Succeeded"),
    (RUN_FAILED, "Failed"),
    (RUN_CANCELED, "Cancelled"),
]
_LABELS = dict(RUN_STATES)
# The message badges' colours (s-<key> in dashboard.css) fit the run states.
_BADGES = {
    RUN_STARTED: "in_flight",
    RUN_SUCCESS: "delivered",
    RUN_FAILED: "failed",
    RUN_CANCELED: "cancelled",
}
RESULT_PREVIEW = 2_000  # characters of a step's result shown in the timeline


def run_badge(state: str) -> tuple[str, str]:
    """(badge class key, label) of a run state."""
    return _BADGES.get(state, "pending"), _LABELS.get(state, state)


@dataclass
class RunQuery:
    """The runs page's filters and page."""

    state: str = ""
    url: str = ""
    page: int = 0

    @classmethod
    def from_query(cls, query: Any) -> RunQuery:
        """Read the filters from a request's query (unknown states are ignored)."""
        state = str(query.get("state", "")).strip()
        return cls(
            state=state if state in _LABELS else "",
            url=str(query.get("url", "")).strip()[:500],
            page=page_number(query),
        )

    @property
    def active(self) -> bool:
        """Whether any filter is set."""
        return bool(self.state or self.url)

    def params(self, **change: Any) -> str:
        """The query string of this filter with some fields changed (for paging links)."""
        values = {"state": self.state, "url": self.url, "page": self.page, **change}
        return urlencode({k: v for k, v in values.items() if v not in ("", 0, None)})

    def matches(self, run: Run) -> bool:
        """Whether the run passes the filter (the URL filter is a case-blind substring)."""
        if self.state and run.state != self.state:
            return False
        return not self.url or self.url.lower() in run.url.lower()


@dataclass
class RunRow:
    """A run as the list shows it."""

    run: Run
    badge: str
    label: str
    steps: int  # steps recorded so far, the initial payload not counted
    waiting_for: list[str]


@dataclass
class RunPage:
    """One page of the run list, with the counts by state."""

    rows: list[RunRow]
    total: int
    counts: dict[str, int]
    page: int
    pages: int


def _step_count(run: Run) -> int:
    count = 0
    for entry in run.entries[1:]:
        step = entry.step
        if step is not None and step.get("stepId") != 0:  # not a parallel plan step
            count += 1
    return count


def run_page(runs: list[Run], query: RunQuery, events: WorkflowEvents) -> RunPage:
    """The page of runs (newest first) the query asks for."""
    counts = dict.fromkeys(_LABELS, 0)
    for run in runs:
        counts[run.state] = counts.get(run.state, 0) + 1
    found = [r for r in runs if query.matches(r)]
    pages = max(1, -(-len(found) // PAGE_SIZE))
    shown = found[query.page * PAGE_SIZE : (query.page + 1) * PAGE_SIZE]
    rows = []
    for run in shown:
        badge, label = run_badge(run.state)
        rows.append(RunRow(run, badge, label, _step_count(run), events.waiting_for(run)))
    return RunPage(rows, len(found), counts, query.page, pages)


def run_waiters(run: Run, events: WorkflowEvents) -> list[Waiter]:
    """The run's waiters now, by event id."""
    return [
        w
        for e in events.waiting_for(run)
        for w in events.waiters(run.user, e)
        if w.run_id == run.id
    ]


@dataclass
class TimelineStep:
    """One row of a run's timeline."""

    name: str
    type: str
    state: str  # a badge key: delivered (done), delayed (sleeping), pending (waiting), ...
    label: str
    at: float | None = None  # when the step's result was recorded (or the row began)
    duration: float | None = None
    result: str = ""
    details: list[str] = field(default_factory=list)
    message_id: str | None = None
    concurrent: int = 1
    errors: list[dict[str, Any]] = field(default_factory=list)


def _attempted_at(index: UserIndex, message_id: str) -> float | None:
    """When the message's last attempt began (the delivery a workflow step ran in)."""
    found = None
    for entry in index.events.get(message_id, []):
        if entry.state == ACTIVE:
            found = entry.time
    return found


def _delivered_at(index: UserIndex, message_id: str) -> float | None:
    for entry in index.events.get(message_id, []):
        if entry.state == DELIVERED:
            return entry.time
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value)
    return body_text(text.encode(), RESULT_PREVIEW)


def _b64_text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        return ""
    try:
        return body_text(base64.b64decode(value, validate=True), RESULT_PREVIEW)
    except (binascii.Error, ValueError):
        return _text(value)


def _seconds(text: Any) -> float | None:
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    if isinstance(text, str):
        try:
            return parse_duration(text)
        except DurationError:
            return None
    return None


def timeline(
    run: Run, engine: Engine, index: UserIndex, events: WorkflowEvents
) -> list[TimelineStep]:
    """The run's steps in order, then what it waits for and its messages still on their way."""
    now = engine.clock.now()
    rows: list[TimelineStep] = []
    entry_at = {e.message_id: i for i, e in enumerate(run.entries)}
    plans: dict[Any, str] = {}  # parallel step id -> its plan message (delivered to run it)
    for entry in run.entries:
        raw = entry.step
        if raw is not None and raw.get("stepId") == 0 and raw.get("targetStep") is not None:
            plans[raw.get("targetStep")] = entry.message_id
    sleeping: set[str] = set()
    groups = step_groups(run, engine)
    for group in groups:
        if group["type"] == "next":
            continue
        for step in group["steps"]:
            row = _step_row(run, step, index, entry_at, plans, now)
            if row.state == "delayed" and row.message_id is not None:
                sleeping.add(row.message_id)
            rows.append(row)
    for waiter in run_waiters(run, events):
        rows.append(
            TimelineStep(
                name=str(waiter.step.get("stepName") or waiter.event_id),
                type=str(waiter.step.get("stepType") or "Wait"),
                state="pending",
                label="Waiting",
                at=waiter.created_at,
                duration=max(0.0, now - waiter.created_at),
                details=[f"for event {waiter.event_id}", f"times out after {waiter.timeout}"],
            )
        )
    pending = groups[-1]["steps"] if groups and groups[-1]["type"] == "next" else []
    labels = {"STEP_RETRY": "Retrying", "STEP_FAILED": "Failed", "STEP_CANCELED": "Cancelled"}
    keys = {"STEP_RETRY": "retry", "STEP_FAILED": "failed", "STEP_CANCELED": "cancelled"}
    names = {row.message_id: row.name for row in rows if row.message_id is not None}
    for step in pending:
        message_id = step["messageId"]
        if message_id in sleeping:
            continue  # shown as its sleep
        # The run's delivery that carries a step's result to the endpoint for what comes next.
        after = names.get(message_id)
        errors = list(step.get("errors") or [])
        state = step.get("state", "STEP_PROGRESS")
        rows.append(
            TimelineStep(
                name=str(step.get("stepName") or (f"after {after}" if after else "next")),
                type="",
                state=keys.get(state, "in_flight"),
                label=labels.get(state, "In progress"),
                message_id=message_id,
                details=[f"{len(errors)} failed attempt(s)"] if errors else [],
                errors=errors,
            )
        )
    return rows


def _step_row(
    run: Run,
    step: dict[str, Any],
    index: UserIndex,
    entry_at: dict[str, int],
    plans: dict[Any, str],
    now: float,
) -> TimelineStep:
    message_id = str(step.get("messageId"))
    at = (step.get("createdAt") or 0) / 1000
    kind = str(step.get("stepType") or "")
    row = TimelineStep(
        name=str(step.get("stepName") or ""),
        type=kind,
        state="delivered",
        label="Done",
        at=at,
        message_id=message_id,
        concurrent=int(step.get("concurrent") or 1),
    )
    if kind == "Initial":
        row.result = _text(step.get("out"))
        row.details.append("the run's payload")
        return row
    if step.get("waitEventId") is not None:
        timed_out = bool(step.get("waitTimeout"))
        row.result = "" if timed_out else _b64_text(step.get("out"))
        row.details.append(f"event {step['waitEventId']}")
        row.details.append(
            "timed out" if timed_out else f"notified (timeout {step.get('waitTimeoutDuration')})"
        )
        deadline = step.get("waitTimeoutDeadline")
        length = _seconds(step.get("waitTimeoutDuration"))
        if isinstance(deadline, int | float) and length is not None:
            row.duration = max(0.0, at - (deadline / 1000 - length))
        return row
    if kind in ("SleepFor", "SleepUntil") or step.get("sleepFor") or step.get("sleepUntil"):
        length = _seconds(step.get("sleepFor"))
        if step.get("sleepFor") is not None:
            row.details.append(
                f"sleep for {span(length) if length is not None else step['sleepFor']}"
            )
        until = step.get("sleepUntil")
        if isinstance(until, int | float) and not isinstance(until, bool):
            row.details.append(f"sleep until {iso(until)}")  # unix seconds, as the SDKs send it
        woke = _attempted_at(index, message_id) or _delivered_at(index, message_id)
        message = index.messages.get(message_id)
        if woke is None and message is not None and not message.finished:
            row.state, row.label = "delayed", "Sleeping"
            row.details.append("wakes " + iso(message.not_before))
            row.duration = max(0.0, now - at)
        elif woke is not None:
            row.duration = max(0.0, woke - at)
        return row
    row.result = _text(step.get("out"))
    if kind == "Call":
        status = step.get("callResponseStatus")
        row.details.append(
            f"{step.get('callMethod') or 'POST'} {step.get('callUrl') or ''}".strip()
        )
        if status is not None:
            row.details.append(f"answered {status}")
            row.result = _text(step.get("callResponseBody"))
    # The step ran during the delivery before it: its plan step's (parallel) or the run's
    # previous message's.
    before = plans.get(step.get("stepId")) if row.concurrent > 1 else None
    if before is None:
        i = entry_at.get(message_id)
        if i:
            before = run.entries[i - 1].message_id
    started = _attempted_at(index, before) if before is not None else None
    if started is not None:
        row.duration = max(0.0, at - started)
    return row
