"""What a workflow run is made of: its steps as QStash keeps them, its waiters, its state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.scheduler import Timer
from ..core.state import CallbackConfig, FlowControlSpec
from ..core.users import User
from ..parsing import safe_json
from ..parsing.header_names import Headers
from ..parsing.retry_expressions import RetryDelay

__all__ = [
    "FAILURE_CALL",
    "FROM_CALLBACK",
    "RUN_CANCELED",
    "RUN_FAILED",
    "RUN_STARTED",
    "RUN_STATES",
    "RUN_SUCCESS",
    "STEP",
    "TO_CALLBACK",
    "Entry",
    "FailureCall",
    "Run",
    "Waiter",
]

# Run states, as the workflow logs name them.
RUN_STARTED = "RUN_STARTED"
RUN_SUCCESS = "RUN_SUCCESS"
RUN_FAILED = "RUN_FAILED"
RUN_CANCELED = "RUN_CANCELED"
RUN_STATES = (RUN_STARTED, RUN_SUCCESS, RUN_FAILED, RUN_CANCELED)

# Call types of a run's entries (the SDKs parse only "step" entries into steps).
STEP = "step"
TO_CALLBACK = "toCallback"
FROM_CALLBACK = "fromCallback"
FAILURE_CALL = "failureCall"


@dataclass
class Entry:
    """One message of the run, as the step list the SDKs parse holds it."""

    message_id: str
    call_type: str
    body: bytes  # initial payload, step JSON, call body or callback JSON
    created_at: float
    headers: Headers = field(default_factory=dict)
    max_retries: int = 0
    # For toCallback entries: where the call went.
    call: dict[str, Any] | None = None

    @property
    def step(self) -> dict[str, Any] | None:
        """The parsed step of a "step" entry (None for the initial payload or non-JSON)."""
        if self.call_type != STEP:
            return None
        try:
            found = safe_json.loads(self.body)
        except ValueError:
            return None
        return found if isinstance(found, dict) and "stepName" in found else None


@dataclass
class Waiter:
    """A run waiting for an event (POST /v2/wait/{eventId})."""

    event_id: str
    run_id: str
    user: User
    url: str
    deadline: float
    timeout: str
    headers: list[tuple[str, str]]  # publish headers of the continuation message
    step: dict[str, Any]
    created_at: float
    timeout_url: str | None = None
    timeout_body: Any = None
    timeout_headers: Headers | None = None
    timer: Timer | None = None


@dataclass
class FailureCall:
    """The failure callback (failure function or failure URL) of a failed run."""

    message_id: str
    url: str
    fail_status: int
    fail_headers: Headers
    fail_body: str
    state: str = "CALLBACK_INPROGRESS"
    response_status: int | None = None
    response_body: str | None = None


@dataclass
class Run:
    """One workflow run: its entries so far, its state and what it was started with."""

    id: str
    user: User
    url: str
    created_at: float
    initial_body: bytes
    sdk_version: str = "1"
    state: str = RUN_STARTED
    completed_at: float | None = None
    response: str | None = None
    labels: list[str] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)
    dlq_id: str | None = None
    failure: FailureCall | None = None
    failure_retries: int = 0  # failure callbacks sent again from the workflow DLQ
    # Failed attempts per message (the logs' StepError shape) and the message the run failed on.
    errors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    error_step: dict[str, str] = field(default_factory=dict)  # Upstash-Error-Step-Name
    failed_message: str | None = None
    # Events notified for this run before it waited (the run-scoped notify's lookback).
    early_events: dict[str, bytes] = field(default_factory=dict)
    order: int = 0
    # The trigger's settings, which later steps that set none of their own follow
    # (the SDKs' WF_TriggerOnConfig feature: the JS SDK sends them only with the trigger).
    retries: int | None = None
    retry_delay: RetryDelay | None = None
    flow_control: FlowControlSpec | None = None
    failure_callback: CallbackConfig | None = None
    trigger_headers: tuple[tuple[str, str], ...] = ()
    # The context.invoke request that started this run (its invoker gets the result).
    invoker: dict[str, Any] | None = None

    @property
    def active(self) -> bool:
        """Still running (steps are accepted)."""
        return self.state == RUN_STARTED
