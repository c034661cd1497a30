"""What the dashboard pages show, read from the engine's state the way the REST handlers read it.

Finished messages leave `UserState.messages` (as on QStash) but stay in the log, so the message
list comes from the log: `MessageIndex` takes in each log entry as the engine writes it (a page
with 10,000 messages reads nothing twice), and notices a reset by the user state changing.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import jwt

from ..core.engine import Engine
from ..core.state import (
    ACTIVE,
    CANCEL_REQUESTED,
    CANCELLED,
    CREATED,
    DELIVERED,
    ERROR,
    FAILED,
    RETRY,
    Delivered,
    LogEntry,
    Message,
    Response,
    UserState,
)
from ..core.users import User
from ..http.render import redact_body, redact_headers
from ..parsing import header_names as h
from ..parsing import safe_json

__all__ = [
    "MAX_MESSAGES",
    "PAGE_SIZE",
    "STATES",
    "Attempt",
    "Claims",
    "MessageIndex",
    "MessagePage",
    "MessageQuery",
    "Status",
    "UserIndex",
    "attempts",
    "body_text",
    "header_pairs",
    "iso",
    "message_body",
    "message_headers",
    "message_page",
    "page_number",
    "relative",
    "search_text",
    "signature_claims",
    "source_id",
    "span",
    "state_key",
    "status",
]

PAGE_SIZE = 50
MAX_MESSAGES = 100_000  # per user: past it, the oldest are forgotten (a long-running server)
BODY_PREVIEW = 20_000  # characters of a body shown on a page

# Filterable states, in the order the page lists them: (key, label).
STATES = [
    ("pending", "Pending"),
    ("delayed", "Delayed"),
    ("in_flight", "In flight"),
    ("retry", "Waiting for retry"),
    ("delivered", "Delivered"),
    ("failed", "Failed"),
    ("cancelled", "Cancelled"),
]
STATE_LABELS = dict(STATES)


# -- time -------------------------------------------------------------------------------------
def iso(t: float | None) -> str:
    """A time as "2025-01-01 00:00:05 UTC" (with milliseconds when there are any)."""
    if t is None:
        return ""
    dt = datetime.fromtimestamp(t, tz=timezone.utc)
    return (
        dt.strftime("%Y-%m-%d %H:%M:%S")
        + (f".{dt.microsecond // 1000:03d}" if dt.microsecond else "")
        + " UTC"
    )


def relative(t: float | None, now: float) -> str:
    """A time relative to now: "in 1h 5m", "3s ago" or "now"."""
    if t is None:
        return ""
    delta = t - now
    if abs(delta) < 0.5:
        return "now"
    text = span(abs(delta))
    return f"in {text}" if delta > 0 else f"{text} ago"


def span(seconds: float) -> str:
    """A duration in its two largest units: "1d 2h", "5m 3s", "0s"."""
    left = round(seconds)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size or (unit == "s" and not parts):
            parts.append(f"{left // size}{unit}")
            left %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


# -- bodies and headers -----------------------------------------------------------------------
def body_text(body: bytes, limit: int = BODY_PREVIEW) -> str:
    """A body for display: pretty JSON, text, or base64 for binary data."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "(binary, base64) " + base64.b64encode(body[:limit]).decode()
    if text[:1] in "{[":
        with contextlib.suppress(ValueError):
            text = json.dumps(safe_json.loads(text), indent=2, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + f"\n… ({len(text) - limit} more)"


def header_pairs(headers: h.Headers) -> list[tuple[str, str]]:
    """Headers as (name, value) pairs, a repeated header once per value."""
    return [(k, v) for k, vs in headers.items() for v in vs]


# -- a message's status -------------------------------------------------------------------------
@dataclass
class Status:
    """How the dashboard shows a message's state."""

    key: str  # one of STATES' keys
    label: str
    detail: str = ""


def status(message: Message, now: float) -> Status:
    """The message's state in a person's terms, with when and which attempt."""
    attempts = f"attempt {message.retried + 1} of {message.max_retries + 1}"
    state = message.state
    if state == DELIVERED:
        return Status("delivered", "Delivered")
    if state == FAILED:
        tries = message.retried + 1
        return Status("failed", "Failed", f"after {tries} attempt{'' if tries == 1 else 's'}")
    if state == CANCELLED:
        return Status("cancelled", "Cancelled")
    if message.in_flight or state in (ACTIVE, ERROR):
        return Status("in_flight", "In flight", attempts)
    if state == RETRY:
        due = message.timer.due if message.timer is not None else None
        when = f", next try {iso(due)} ({relative(due, now)})" if due is not None else ""
        return Status("retry", "Waiting for retry", attempts + when)
    if state == CANCEL_REQUESTED:
        return Status("in_flight", "Cancelling", attempts)
    if state == CREATED and message.not_before > now:
        return Status(
            "delayed",
            "Delayed",
            f"due {iso(message.not_before)} ({relative(message.not_before, now)})",
        )
    waiting = []
    if message.queue_name:
        waiting.append(f"queue {message.queue_name}")
    if message.flow_control is not None:
        waiting.append(f"flow-control key {message.flow_control.key}")
    return Status(
        "pending", "Pending", ("waiting on " + " and ".join(waiting)) if waiting else "due now"
    )


_FINAL_KEYS = {DELIVERED: "delivered", FAILED: "failed", CANCELLED: "cancelled"}
_BUSY = frozenset({ACTIVE, ERROR, CANCEL_REQUESTED})


def state_key(message: Message, now: float) -> str:
    """`status(message, now).key` without building its texts (run for every message)."""
    state = message.state
    final = _FINAL_KEYS.get(state)
    if final is not None:
        return final
    if message.in_flight or state in _BUSY:
        return "in_flight"
    if state == RETRY:
        return "retry"
    return "delayed" if message.not_before > now else "pending"


# -- the index of a user's messages ------------------------------------------------------------
@dataclass
class UserIndex:
    """One user's messages as the log has shown them."""

    state: UserState
    messages: OrderedDict[str, Message] = field(default_factory=OrderedDict)  # creation order
    events: dict[str, list[LogEntry]] = field(default_factory=dict)
    callbacks: dict[str, list[str]] = field(default_factory=dict)  # source id -> callback ids
    # A final state never changes: those are counted once; only the others are looked at again.
    final_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATE_LABELS, 0))
    unfinished: dict[str, Message] = field(default_factory=dict)
    # Lowercased search text per message id, made on a message's first search (it never changes).
    texts: dict[str, str] = field(default_factory=dict)

    def text(self, message: Message) -> str:
        """The message's search text (made once)."""
        found = self.texts.get(message.id)
        if found is None:
            found = self.texts[message.id] = search_text(message)
        return found

    def add(self, entry: LogEntry) -> None:
        """Take in one log entry (a new message, or a new state of a known one)."""
        message = entry.message
        events = self.events.get(message.id)
        if events is None:
            events = self.events[message.id] = []
            self.messages[message.id] = message
            self.unfinished[message.id] = message
            if message.kind != "message":
                source = source_id(message)
                if source is not None:
                    self.callbacks.setdefault(source, []).append(message.id)
        events.append(entry)
        final = _FINAL_KEYS.get(entry.state)
        if final is not None and self.unfinished.pop(message.id, None) is not None:
            self.final_counts[final] += 1

    def forget_oldest(self) -> None:
        """Drop the oldest message (a long-running server keeps a bounded history)."""
        message_id, message = self.messages.popitem(last=False)
        if self.unfinished.pop(message_id, None) is None:
            self.final_counts[_FINAL_KEYS[message.state]] -= 1
        self.events.pop(message_id, None)
        self.texts.pop(message_id, None)
        self.callbacks.pop(message_id, None)


class MessageIndex:
    """Every user's messages, fed by the engine's log as each entry is written.

    A user's index starts from what the log holds when it is first needed (state restored
    from a data file, or messages published before anyone opened the dashboard); from the first
    read on, the engine's log listener adds each entry as it is written, so the index does not
    depend on how the engine keeps (or trims) its logs. Until then it costs nothing per message.
    A reset shows as a new user state object. Past `limit` messages a user's oldest are
    forgotten.
    """

    def __init__(self, engine: Engine, limit: int = MAX_MESSAGES) -> None:
        self.engine = engine
        self.limit = limit
        self._users: dict[str, UserIndex] = {}
        self._listening = False

    def _of_state(self, name: str, st: UserState) -> tuple[UserIndex, bool]:
        """The user's index, and whether it was made now from what the log already holds.

        Entries restored from a data file at start were written without the listener.
        """
        index = self._users.get(name)
        if index is not None and index.state is st:
            return index, False
        index = self._users[name] = UserIndex(st)
        for entry in st.logs:
            index.add(entry)
        while len(index.messages) > self.limit:
            index.forget_oldest()
        return index, True

    def add(self, entry: LogEntry) -> None:
        """The engine's log listener."""
        name = entry.message.user.name
        index, made = self._of_state(name, self.engine.states[name])
        if made:
            return  # the log already held this entry: it was taken in with the rest
        if entry.idx > 0 and entry.message.id not in index.events:
            return  # a later state of a message forgotten past the limit stays forgotten
        index.add(entry)
        if len(index.messages) > self.limit:
            index.forget_oldest()

    def read(self, user: User) -> UserIndex:
        """The user's index (empty after a reset)."""
        if not self._listening:
            self._listening = True
            self.engine.log_listeners.append(self.add)
        return self._of_state(user.name, self.engine.state(user))[0]


def source_id(callback: Message) -> str | None:
    """The id of the message a callback reports on."""
    try:
        found = json.loads(callback.body).get("sourceMessageId")
    except (ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None


# -- filtering ---------------------------------------------------------------------------------
def page_number(query: Any) -> int:
    """The `page` query parameter (0 when missing or not a number)."""
    try:
        return max(0, min(1_000_000, int(query.get("page", 0))))
    except ValueError:
        return 0


@dataclass
class MessageQuery:
    """The messages page's filters and page."""

    state: str = ""
    url: str = ""
    label: str = ""
    id: str = ""
    queue: str = ""
    q: str = ""  # free text: id, URL, labels, headers, body
    page: int = 0

    @classmethod
    def from_query(cls, query: Any) -> MessageQuery:
        """Read the filters from a request's query (unknown states are ignored)."""

        def text(name: str) -> str:
            return str(query.get(name, "")).strip()[:500]

        state = text("state")
        return cls(
            state=state if state in STATE_LABELS else "",
            url=text("url"),
            label=text("label"),
            id=text("id"),
            queue=text("queue"),
            q=text("q"),
            page=page_number(query),
        )

    @property
    def active(self) -> bool:
        """Whether any filter is set."""
        return any((self.state, self.url, self.label, self.id, self.queue, self.q))

    def params(self, **change: Any) -> str:
        """The query string of this filter with some fields changed (for paging links)."""
        from urllib.parse import urlencode

        values = {
            "state": self.state,
            "url": self.url,
            "label": self.label,
            "id": self.id,
            "queue": self.queue,
            "q": self.q,
            "page": self.page,
        }
        values.update(change)
        return urlencode({k: v for k, v in values.items() if v not in ("", 0, None)})

    def matches(self, message: Message, key: str) -> bool:
        """Whether the message (whose state key is `key`) passes all but the text search.

        `message_page` checks the text search against the index's cached text.
        """
        if self.state and key != self.state:
            return False
        if self.url and self.url.lower() not in message.url.lower():
            return False
        if self.label and self.label not in message.labels:
            return False
        if self.id and self.id not in message.id:
            return False
        return not self.queue or message.queue_name == self.queue


def search_text(message: Message) -> str:
    """What a text search looks through, lowercased.

    The id, URL, labels, headers and body, less what the message redacts.
    """
    parts = [message.id, message.url, *message.labels]
    if not message.redact.all_headers:
        for k, vs in message.headers.items():
            if k not in message.redact.headers:
                parts.append(k)
                parts.extend(vs)
    if not message.redact.body:
        parts.append(message.body.decode("utf-8", "replace"))
    return "\n".join(parts).lower()


@dataclass
class MessagePage:
    """One page of the message list, with the counts by state."""

    rows: list[tuple[Message, Status]]
    total: int  # messages matching the filter
    counts: dict[str, int]  # every message of the user, by status key
    page: int
    pages: int


def message_page(index: UserIndex, query: MessageQuery, now: float) -> MessagePage:
    """The page of messages (newest first) the query asks for."""
    counts = dict(index.final_counts)
    for message in index.unfinished.values():
        counts[state_key(message, now)] += 1
    start = query.page * PAGE_SIZE
    newest_first = reversed(index.messages.values())
    if not query.active:
        page = itertools.islice(newest_first, start, start + PAGE_SIZE)
        rows = [(m, status(m, now)) for m in page]
        total = len(index.messages)
    else:
        rows, total = [], 0
        needle = query.q.lower()
        for message in newest_first:
            if not query.matches(message, state_key(message, now)):
                continue
            if needle and needle not in index.text(message):
                continue
            if start <= total < start + PAGE_SIZE:
                rows.append((message, status(message, now)))
            total += 1
    pages = max(1, -(-total // PAGE_SIZE))
    return MessagePage(rows, total, counts, query.page, pages)


# -- one message -------------------------------------------------------------------------------
@dataclass
class Claims:
    """A delivery's signature claims and what they were checked against."""

    claims: dict[str, Any]
    verified_with: str | None  # "current" / "next" signing key, or None
    body_matches: bool


def signature_claims(token: str, user: User, body: bytes) -> Claims | None:
    """Decode a signature: its claims, the key that signed it, whether the body matches."""
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    verified = None
    for name, key in (("current", user.current_signing_key), ("next", user.next_signing_key)):
        try:
            jwt.decode(
                token,
                key,
                algorithms=["HS256"],
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            continue
        verified = name
        break
    digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).decode()
    return Claims(claims, verified, claims.get("body", "").rstrip("=") == digest.rstrip("="))


@dataclass
class Attempt:
    """One delivery attempt of a message, as its page shows it."""

    number: int
    record: Delivered
    request_headers: list[tuple[str, str]]
    request_body: str
    claims: Claims | None
    response: Response | None


def attempts(engine: Engine, message: Message) -> list[Attempt]:
    """The message's attempts, oldest first, with what it redacts hidden."""
    out = []
    redact = message.redact
    for record in _records_for(engine.delivered, message):
        headers = [
            (k, h.redacted(v) if redact.all_headers or h.canonical(k) in redact.headers else v)
            for k, v in record.headers
        ]
        signature = next((v for k, v in record.headers if k == "Upstash-Signature"), None)
        claims = signature_claims(signature, message.user, record.body) if signature else None
        out.append(
            Attempt(
                record.retried + 1,
                record,
                headers,
                body_text(redact_body(record.body, redact)),
                claims,
                record.response,
            )
        )
    return out


def _records_for(records: Iterable[Delivered], message: Message) -> Iterator[Delivered]:
    return (r for r in records if r.message is message)


def message_headers(message: Message) -> list[tuple[str, str]]:
    """The headers the message was published with (redacted as it asks)."""
    return header_pairs(redact_headers(message.headers, message.redact))


def message_body(message: Message) -> str:
    """The body the message was published with (redacted as it asks)."""
    return body_text(redact_body(message.body, message.redact))
