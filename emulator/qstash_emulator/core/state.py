"""What the engine stores: messages, their log events, the DLQ, per user."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..parsing.header_names import Headers
from ..parsing.retry_expressions import RetryDelay
from .scheduler import Timer
from .users import User

if TYPE_CHECKING:
    from .history import DlqIndex, LogIndex
__all__ = [
    "ACTIVE",
    "CANCELLED",
    "CANCEL_REQUESTED",
    "CREATED",
    "DELIVERED",
    "ERROR",
    "FAILED",
    "IN_PROGRESS",
    "NO_REDACTION",
    "RETRY",
    "CallbackConfig",
    "Delivered",
    "DlqEntry",
    "FlowControlSpec",
    "LogEntry",
    "Message",
    "Redaction",
    "Response",
    "UserState",
]

# Message states, as QStash's logs name them.
CREATED = "CREATED"
ACTIVE = "ACTIVE"
RETRY = "RETRY"
ERROR = "ERROR"
DELIVERED = "DELIVERED"
FAILED = "FAILED"
CANCEL_REQUESTED = "CANCEL_REQUESTED"
# The reference spells it CANCELLED, but both official SDKs parse (and crash without) CANCELED.
CANCELLED = "CANCELED"
IN_PROGRESS = "IN_PROGRESS"  # a filter only: ACTIVE, RETRY or ERROR
_FINAL_STATES = frozenset({DELIVERED, FAILED, CANCELLED})


@dataclass(frozen=True, slots=True)
class Redaction:
    """What `Upstash-Redact-Fields` hides in logs and API answers (deliveries keep it)."""

    body: bool = False
    all_headers: bool = False
    headers: frozenset[str] = frozenset()  # canonical names

    def __bool__(self) -> bool:
        return self.body or self.all_headers or bool(self.headers)


NO_REDACTION = Redaction()


@dataclass(slots=True)
class CallbackConfig:
    """Where and how a callback or failure callback is published."""

    url: str
    method: str = "POST"
    headers: Headers = field(default_factory=dict)
    timeout: float | None = None
    retries: int | None = None
    retry_delay: RetryDelay | None = None
    delay: float = 0.0


@dataclass(slots=True)
class FlowControlSpec:
    """A message's flow-control settings (Upstash-Flow-Control-Key and -Value)."""

    key: str
    parallelism: int | None = None
    rate: int | None = None
    period: float = 1.0


@dataclass(slots=True)
class Message:
    """One published message (or callback) and its delivery state.

    Times (`created_at`, `not_before`) are clock seconds and `timeout` seconds; the API renders
    them in Unix milliseconds. `headers` are what reaches the destination. The engine changes
    `state`, `retried` and `timer` as attempts happen; a finished message leaves the user's
    store (its log events and DLQ entry stay).
    """

    id: str
    user: User
    url: str
    method: str
    headers: Headers  # delivered to the destination (forwarded and plain headers)
    body: bytes
    created_at: float
    not_before: float
    max_retries: int
    timeout: float
    order: tuple[int, ...]  # deterministic tie-break for work due at the same instant
    retry_delay: RetryDelay | None = None
    callback: CallbackConfig | None = None
    failure_callback: CallbackConfig | None = None
    labels: tuple[str, ...] = ()  # a tuple: no list of its own for the many messages with none
    redact: Redaction = NO_REDACTION  # shared: held messages cost only what they set
    queue_name: str | None = None
    topic_name: str | None = None
    endpoint_name: str | None = None
    schedule_id: str | None = None
    caller_ip: str = "127.0.0.1"
    flow_control: FlowControlSpec | None = None
    kind: str = "message"  # "message", "callback" or "failure_callback"
    api: str | None = None  # "llm" for LLM API destinations
    subject: str | None = None  # signed `sub` when delivery goes elsewhere (rewrites)
    retried: int = 0
    state: str = CREATED
    events: int = 0
    in_flight: bool = False
    cancel_requested: bool = False
    timer: Timer | None = None
    deliver_to: str | None = None  # actual URL when a rewrite maps `url` elsewhere

    @property
    def finished(self) -> bool:
        """True once the message is DELIVERED, FAILED or CANCELED."""
        return self.state in _FINAL_STATES


@dataclass(slots=True)
class Response:
    """What a destination answered (status None: no answer — timeout or connection error)."""

    status: int | None
    headers: Headers
    body: bytes
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True for a 2xx answer."""
        return self.status is not None and 200 <= self.status < 300


@dataclass(slots=True)
class LogEntry:
    """One event of a message's log (GET /v2/logs); `time` in clock seconds."""

    time: float
    message: Message
    state: str
    idx: int
    error: str | None = None
    next_delivery_time: float | None = None
    response: Response | None = None

    @property
    def key(self) -> tuple[float, tuple[int, ...], int]:
        """Sort key: time, then message order, then the event's index (deterministic logs)."""
        return (self.time, self.message.order, self.idx)


@dataclass(slots=True)
class DlqEntry:
    """A message that failed all its retries, with the last answer; `time` in clock seconds."""

    dlq_id: str
    message: Message
    response: Response
    time: float


@dataclass(slots=True)
class Delivered:
    """One delivery attempt as it left the emulator (the plugin asserts on these)."""

    message: Message
    url: str
    method: str
    headers: list[tuple[str, str]]
    body: bytes
    time: float
    retried: int
    response: Response | None = None


@dataclass
class UserState:
    """Everything the engine stores for one user: live messages, logs, DLQ and dedup keys."""

    logs: LogIndex  # ordered, within the retention (history.py)
    dlq: DlqIndex  # by DLQ id, also in key order
    messages: dict[str, Message] = field(default_factory=dict)
    dedup: dict[str, tuple[str, float]] = field(default_factory=dict)  # id -> (message id, expiry)
