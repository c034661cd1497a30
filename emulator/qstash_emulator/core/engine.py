"""The transport-free engine: publish, deliver, retry, callbacks, DLQ, logs and cancel.

Handlers call these methods with parsed input; everything here runs on the one event loop and
reads time only from the clock, so the same calls give the same ids, times and logs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from ..parsing import header_names as h
from ..parsing.durations import parse_reset_value
from ..parsing.forwarding import drop_reserved
from ..parsing.publish_headers import MessageSpec
from ..store.base import DEDUP as _DEDUP
from ..store.base import DLQ as _DLQ
from ..store.base import USER as _USER
from ..store.base import Store
from ..store.memory import MemoryStore
from .clock import Clock, ms
from .delivery import Delivery
from .errors import ApiError, bad_request, not_found
from .history import DEFAULT_KEEP_DELIVERIES, DlqIndex, LogIndex, Retention
from .ids import IdSource, digest
from .retention import DEFAULT_WINDOW, FinishedMessages
from .scheduler import Scheduler
from .signing import sign
from .state import (
    ACTIVE,
    CANCEL_REQUESTED,
    CANCELLED,
    CREATED,
    DELIVERED,
    ERROR,
    FAILED,
    RETRY,
    CallbackConfig,
    Delivered,
    DlqEntry,
    LogEntry,
    Message,
    Response,
    UserState,
)
from .users import User, Users

__all__ = ["Engine", "Gate", "backoff"]

_log = logging.getLogger("qstash_emulator")

_DAY = 86400.0
_DEDUP_WINDOW = 600.0  # QStash deduplicates for ten minutes
_RESET_HEADERS = (
    "retry-after",
    "x-ratelimit-reset",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
)


class Gate(Protocol):
    """Holds messages back before an attempt (queues, flow control).

    `Backend` wires the gates in a fixed order (`engine.gates`). A message is attempted only
    when every gate admits it; a gate that holds one must later call
    `engine.start(message, self)` for it.
    """

    def admit(self, message: Message) -> bool:
        """Return False to hold `message` back (the gate then owns starting it later)."""

    def done(self, message: Message) -> None:
        """Called after every attempt of a message this gate admitted (frees its slot)."""

    def cancelled(self, message: Message) -> None:
        """A message the gate may be holding was cancelled: forget it, free its slot."""


def backoff(retried: int) -> float:
    """QStash's default: min(1 day, e^(2.5·n)) seconds before retry number n."""
    return min(_DAY, math.exp(2.5 * retried))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Engine:
    """The transport-free core: publish, deliver, retry, callbacks, DLQ, logs and cancel.

    Handlers call it with parsed input (a `MessageSpec`) and render what it returns. Everything
    runs on the one event loop and reads time only from `clock` (seconds since the Unix epoch),
    so the same calls give the same ids, times and logs. Work that happens later (a delay, a
    retry) is put on `scheduler`; attempts go through `delivery`. `Backend` builds it.

    Args:
        clock: The clock every timestamp and due time is read from.
        scheduler: Runs due work (first attempts, retries, callbacks).
        users: The users and their signing keys.
        ids: Deterministic message ids.
        delivery: Sends attempts (real HTTP, or an interceptor's answer).
        wall: The receiver's clock for JWT `iat`/`exp` (follows freezegun), not `clock`.
        keep_deliveries: How many `Delivered` records to keep (None: all).
    """

    def __init__(
        self,
        *,
        clock: Clock,
        scheduler: Scheduler,
        users: Users,
        ids: IdSource,
        delivery: Delivery,
        wall: Callable[[], float],
        keep_deliveries: int | None = DEFAULT_KEEP_DELIVERIES,
        retention: Retention | None = None,
        store: Store | None = None,
        finished_retention: float = DEFAULT_WINDOW,
    ) -> None:
        self.store: Store = (
            store if store is not None else MemoryStore()
        )  # told of every change (a no-op unless persistent)
        self.clock = clock
        self.scheduler = scheduler
        self.users = users
        self.ids = ids
        self.delivery = delivery
        self.wall = wall  # the verifier's clock, for JWT times (see signing.sign)
        self.states: dict[str, UserState] = {}
        self.gates: list[Gate] = []
        # History is bounded: the last `keep_deliveries` attempts, each user's logs by retention.
        self.delivered: deque[Delivered] = deque(maxlen=keep_deliveries)
        # Called with each attempt's record once its answer is in (the pytest plugin's verdicts).
        self.delivery_listeners: list[Callable[[Delivered], None]] = []
        self.retention = retention or Retention()
        # Called once an attempt's outcome is settled (next retry armed, or final): the dev
        # server's request log, which prints the next retry time.
        self.settled_listeners: list[Callable[[Delivered], None]] = []
        # Delivered and failed messages stay readable by id for a while (see retention.py).
        self.finished = FinishedMessages(clock, finished_retention)
        # Named hooks for resources that follow messages (workflow runs): a created message
        # (with its spec and, for callbacks, the message that spawned it), a failed one, and a
        # callback body about to be sent (tag "callback" or "failure").
        self.created_hooks: list[Callable[[Message, MessageSpec, Message | None], None]] = []
        self.failed_hooks: list[Callable[[Message, Response, str | None], None]] = []
        self.callback_body_hooks: list[Callable[[Message, dict[str, Any], str], None]] = []
        # Checks of a publish's spec before anything is created (may raise ApiError).
        self.publish_checks: list[Callable[[User, MessageSpec], None]] = []
        # Called with every log entry as it is written (the dashboard: its index, live updates).
        self.log_listeners: list[Callable[[LogEntry], None]] = []
        # Header maps shared by messages that have the same headers (they are never changed in
        # place): a held message costs no dict and lists of its own for the usual few headers.
        self._header_maps: dict[tuple[tuple[str, ...], ...], h.Headers] = {}
        # One bound method for every message's timer, not one per schedule() call.
        self._due_work = self._due

    def state(self, user: User) -> UserState:
        """The user's stored messages, logs, DLQ and dedup entries (created on first use)."""
        st = self.states.get(user.name)
        if st is None:
            st = self.states[user.name] = UserState(
                logs=LogIndex(self.retention, self.clock.now), dlq=DlqIndex()
            )
        return st

    def reset(self) -> None:
        """Forget every user's messages, logs, DLQ and delivery records; cancel their timers."""
        for st in self.states.values():
            for message in st.messages.values():
                if message.timer is not None:
                    message.timer.cancel()
        self.states.clear()
        self.delivered.clear()
        self.finished.clear()
        self._header_maps.clear()

    # -- publish ------------------------------------------------------------------------------
    def check_body(self, user: User, body: bytes) -> None:
        """Refuse a body larger than the user's plan allows.

        Raises:
            ApiError: 413 when `body` exceeds the quota's maximum message size.
        """
        if len(body) > user.quota.max_message_size:
            raise ApiError(
                413,
                f"message size {len(body)} bytes exceeds the {user.quota.name} plan's limit of "
                f"{user.quota.max_message_size} bytes",
            )

    def dedup_key(self, spec: MessageSpec, destination: str, body: bytes) -> str | None:
        """The deduplication key of a publish, or None when it asks for no deduplication.

        `Upstash-Deduplication-Id` keys on destination and id; `Upstash-Content-Based-Deduplication`
        on destination, forwarded headers and body.
        """
        if spec.dedup_id is not None:
            return "id:" + destination + ":" + spec.dedup_id
        if spec.content_dedup:
            # Destination, body and the headers that reach it (deduplication.mdx).
            headers = json.dumps(sorted(spec.headers.items())).encode()
            data = destination.encode() + b"\0" + headers + b"\0" + body
            return "content:" + hashlib.sha256(data).hexdigest()
        return None

    def find_duplicate(self, user: User, key: str | None) -> str | None:
        """The id of the message published earlier with `key`, or None.

        A key expires ten minutes (clock time) after its publish, as QStash's do.
        """
        if key is None:
            return None
        entry = self.state(user).dedup.get(key)
        if entry is not None and entry[1] > self.clock.now():
            return entry[0]
        return None

    def _sweep_dedup(self, user: User, dedup: dict[str, tuple[str, float]]) -> None:
        now = self.clock.now()
        for key in [k for k, (_id, expiry) in dedup.items() if expiry <= now]:
            del dedup[key]
            self.store.delete(_DEDUP, user.name, key)

    def publish_url(
        self,
        user: User,
        url: str,
        spec: MessageSpec,
        body: bytes,
        *,
        caller_ip: str,
        dedup_destination: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Create and schedule one message to a URL; answers QStash's publish response.

        Args:
            user: The publishing user.
            url: The destination URL.
            spec: The parsed publish headers.
            body: The request body, delivered as is.
            caller_ip: Reported to the destination in `Upstash-Caller-Ip`.
            dedup_destination: What deduplication keys on, when not `url` (e.g. a URL group).
            **fields: Further `Message` fields (queue, topic, endpoint names...).

        Returns:
            `{"messageId": ...}`, plus `"deduplicated": True` for a duplicate publish.
        """
        key = self.dedup_key(spec, dedup_destination or url, body)
        duplicate = self.find_duplicate(user, key)
        if duplicate is not None:
            return {"messageId": duplicate, "deduplicated": True}
        message = self.new_message(user, url, spec, body, caller_ip=caller_ip, **fields)
        if key is not None:
            dedup = self.state(user).dedup
            entry = dedup[key] = (message.id, self.clock.now() + _DEDUP_WINDOW)
            self.store.put(_DEDUP, user.name, key, entry)
            size = len(dedup)
            if size >= 1024 and size & (size - 1) == 0:  # at each power of two: O(1) amortized
                self._sweep_dedup(user, dedup)
        self.schedule(message)
        return {"messageId": message.id}

    def new_message(
        self,
        user: User,
        url: str,
        spec: MessageSpec,
        body: bytes,
        *,
        caller_ip: str,
        message_id: str | None = None,
        order: tuple[int, ...] | None = None,
        source: Message | None = None,
        **fields: Any,
    ) -> Message:
        """Create and store a message (logged CREATED) without scheduling it.

        Args:
            user: The owner.
            url: The destination URL.
            spec: The parsed publish headers.
            body: The body to deliver.
            caller_ip: Reported to the destination.
            message_id: A given id (derived ids for callbacks); default: the next message id.
            order: Tie-break for work due at the same instant; default: a fresh counter.
            source: For a callback, the message whose attempt it reports (the created hooks
                see it).
            **fields: Further `Message` fields.

        Returns:
            The new message; call `schedule` to have it attempted.
        """
        now = self.clock.now()
        not_before = spec.not_before if spec.not_before is not None else now + spec.delay
        message = Message(
            id=message_id or self.ids.next("message", "msg_"),
            user=user,
            url=url,
            method=spec.method,
            headers=self._headers_of(spec.headers),
            body=body,
            created_at=now,
            not_before=not_before,
            max_retries=spec.retries,
            timeout=spec.timeout or user.quota.max_timeout,
            order=order if order is not None else (self.ids.counter("order"),),
            retry_delay=spec.retry_delay,
            callback=spec.callback,
            failure_callback=spec.failure_callback,
            labels=tuple(spec.labels),
            redact=spec.redact,
            caller_ip=caller_ip,
            flow_control=spec.flow_control,
            **fields,
        )
        self.state(user).messages[message.id] = message
        for hook in self.created_hooks:
            hook(message, spec, source)
        self.log(message, CREATED)
        return message

    def _headers_of(self, headers: h.Headers) -> h.Headers:
        """A message's own header map: shared with earlier messages that have the same."""
        key = tuple([(name, *values) for name, values in headers.items()])
        shared = self._header_maps.get(key)
        if shared is None:
            shared = {name: list(values) for name, values in headers.items()}
            if len(self._header_maps) < 1024:  # the usual few sets, not every distinct one
                self._header_maps[key] = shared
        return shared

    def schedule(self, message: Message, at: float | None = None) -> None:
        """Put the message's next attempt on the scheduler, at `at` (default: its `not_before`).

        Times are seconds on the engine's clock. When due, the gates are asked before the attempt.
        """
        due = message.not_before if at is None else at
        message.timer = self.scheduler.call_at(due, self._due_work, message.order, message)

    async def _due(self, message: Message) -> None:
        message.timer = None
        if message.finished:
            return
        if all(gate.admit(message) for gate in self.gates):
            await self._attempt(message)

    def start(self, message: Message, admitted_by: Gate) -> None:
        """Run a message that a gate held back and now admits.

        The gates after `admitted_by` still get their say (a queue's message may wait on flow
        control); then the attempt starts as soon as the scheduler runs.
        """
        gates = self.gates
        later = gates[gates.index(admitted_by) + 1 :] if admitted_by in gates else []
        if all(gate.admit(message) for gate in later):
            self.scheduler.call_soon(lambda: self._attempt(message), message.order)

    # -- delivery -----------------------------------------------------------------------------
    def outgoing_headers(self, message: Message) -> list[tuple[str, str]]:
        """An attempt's headers: the message's own, QStash's `Upstash-*` and a fresh signature.

        The JWT is signed with the user's current key, its `sub` is the published URL and its
        times come from `wall`, so the app's `Receiver` accepts it even under freezegun.
        """
        user = message.user
        # Whatever path built the headers, the ones set below are never sent twice and no
        # hop-by-hop header goes out as part of the message.
        out = drop_reserved(h.flat(message.headers))
        out.append(("User-Agent", "Upstash-QStash"))
        out.append(("Upstash-Message-Id", message.id))
        out.append(("Upstash-Retried", str(message.retried)))
        out.append(("Upstash-Caller-Ip", message.caller_ip))
        if message.topic_name:
            out.append(("Upstash-Topic-Name", message.topic_name))
        if message.schedule_id:
            out.append(("Upstash-Schedule-Id", message.schedule_id))
        jti = "jwt_" + digest(self.ids.seed, message.id, message.retried).hex()[:24]
        signature = sign(
            user.current_signing_key,
            url=message.subject or message.url,
            body=message.body,
            now=self.wall(),
            jti=jti,
        )
        out.append(("Upstash-Signature", signature))
        return out

    async def _attempt(self, message: Message) -> None:
        if message.finished:
            return
        message.in_flight = True
        self.log(message, ACTIVE)
        headers = self.outgoing_headers(message)
        target = message.deliver_to or message.url
        record = Delivered(
            message,
            target,
            message.method,
            headers,
            message.body,
            self.clock.now(),
            message.retried,
        )
        self.delivered.append(record)
        try:
            response = await self.delivery.send(
                message.method, target, headers, message.body, message.timeout
            )
        except Exception as exc:  # any failure is a failed attempt, never a stuck message
            _log.exception("delivery of %s to %s failed", message.id, target)
            response = Response(
                None, {}, b"", error=f"delivery failed: {type(exc).__name__}: {exc}"
            )
        finally:
            message.in_flight = False
        record.response = response
        for listener in self.delivery_listeners:
            listener(record)
        try:
            self._retry_or_fail(message, response)
        finally:
            for gate in self.gates:
                gate.done(message)
            for listener in self.settled_listeners:
                listener(record)

    def _retry_or_fail(self, message: Message, response: Response) -> None:
        """After an attempt: delivered, retried later, or failed into the DLQ."""
        if response.ok:
            self.log(message, DELIVERED, response=response)
            self._finish(message)
            self._callback(message, response)
            return
        error = response.error or f"{response.status} {_reason(response.status)}"
        self.log(message, ERROR, error=error, response=response)
        non_retryable = (
            response.status == 489 and _header(response, "upstash-nonretryable-error") == "true"
        )
        if message.cancel_requested:
            self.log(message, CANCELLED)
            self._finish(message)
            return
        if not non_retryable and message.retried < message.max_retries:
            self._callback(message, response)
            delay = self.retry_delay(message, response)
            message.retried += 1
            due = self.clock.now() + delay
            self.log(message, RETRY, next_delivery_time=due)
            self.schedule(message, at=due)
            return
        self._fail(message, response, error)

    def retry_delay(self, message: Message, response: Response) -> float:
        """Seconds until the next retry after `response` failed.

        A reset header on the response (`Retry-After`, `X-RateLimit-Reset*`, up to a day) wins;
        else the message's `Upstash-Retry-Delay` expression; else QStash's exponential `backoff`.
        """
        now = self.clock.now()
        # Past a day a header is ignored (parse_reset_value gives None) and the backoff applies;
        # with several (requests and tokens both exhausted) the latest reset is the one to wait.
        resets = [
            seconds
            for name in _RESET_HEADERS
            if (value := _header(response, name)) is not None
            and (seconds := parse_reset_value(value, now)) is not None
        ]
        if resets:
            return max(resets)
        if message.retry_delay is not None:
            return message.retry_delay.evaluate(message.retried) / 1000.0
        return backoff(message.retried + 1)

    def _fail(self, message: Message, response: Response, error: str) -> None:
        self.log(message, FAILED, error=error, response=response)
        self._finish(message)
        dlq_id = None
        if message.kind == "message":
            now = self.clock.now()
            dlq_id = f"{ms(now)}-{int.from_bytes(digest(message.id)[:3], 'big')}"
            entry = self.state(message.user).dlq[dlq_id] = DlqEntry(dlq_id, message, response, now)
            self.store.put(_DLQ, message.user.name, dlq_id, entry)
        for hook in self.failed_hooks:
            hook(message, response, dlq_id)
        self._callback(message, response)
        if message.failure_callback is not None:
            self._spawn_callback(message, message.failure_callback, response, "failure", dlq_id)

    def _finish(self, message: Message) -> None:
        self.state(message.user).messages.pop(message.id, None)
        if message.timer is not None:
            message.timer.cancel()
            message.timer = None
        if message.state in (DELIVERED, FAILED):
            self.finished.keep(message)

    # -- callbacks ----------------------------------------------------------------------------
    def _callback(self, message: Message, response: Response) -> None:
        if message.callback is not None:
            self._spawn_callback(message, message.callback, response, "callback", None)

    def callback_body(
        self, message: Message, response: Response, dlq_id: str | None
    ) -> dict[str, Any]:
        """The JSON body QStash posts to a callback or failure callback about `response`."""
        body: dict[str, Any] = {
            "status": response.status or 0,
            "header": response.headers,
            "body": _b64(response.body),
            "retried": message.retried,
            "maxRetries": message.max_retries,
            "sourceMessageId": message.id,
            "url": message.url,
            "method": message.method,
            "sourceHeader": message.headers,
            "sourceBody": _b64(message.body),
            "notBefore": str(ms(message.not_before)),
            "createdAt": str(ms(message.created_at)),
            "callerIP": message.caller_ip,
        }
        if response.error:
            body["error"] = response.error
        if dlq_id is not None:
            body["dlqId"] = dlq_id
        if message.topic_name:
            body["topicName"] = message.topic_name
        if message.endpoint_name:
            body["endpointName"] = message.endpoint_name
        if message.schedule_id:
            body["scheduleId"] = message.schedule_id
        if message.queue_name:
            body["queueName"] = message.queue_name
        return body

    def _spawn_callback(
        self,
        message: Message,
        cfg: CallbackConfig,
        response: Response,
        tag: str,
        dlq_id: str | None,
    ) -> Message:
        fields = self.callback_body(message, response, dlq_id)
        for hook in self.callback_body_hooks:
            hook(message, fields, tag)
        body = compact_json(fields)
        spec = MessageSpec(
            method=cfg.method,
            headers={
                **{k: list(v) for k, v in cfg.headers.items()},
                "Content-Type": ["application/json"],
            },
            retries=cfg.retries if cfg.retries is not None else message.max_retries,
            retry_delay=cfg.retry_delay if cfg.retry_delay is not None else message.retry_delay,
            timeout=cfg.timeout,
            delay=cfg.delay,
        )
        callback = self.new_message(
            message.user,
            cfg.url,
            spec,
            body,
            caller_ip=message.caller_ip,
            message_id=self.ids.derived(message.id, f"{tag}:{message.retried}", "msg_"),
            order=(*message.order, message.retried, 1 if tag == "callback" else 2),
            source=message,
            kind="callback" if tag == "callback" else "failure_callback",
        )
        self.schedule(callback)
        return callback

    # -- logs ---------------------------------------------------------------------------------
    def log(
        self,
        message: Message,
        state: str,
        *,
        error: str | None = None,
        next_delivery_time: float | None = None,
        response: Response | None = None,
    ) -> None:
        """Move the message to `state` and append the event to the user's log.

        Args:
            message: The message the event is about.
            state: One of the state names in `core.state` (CREATED, ACTIVE, ...).
            error: The failure text for ERROR and FAILED events.
            next_delivery_time: When the retry of a RETRY event is due (clock seconds).
            response: The destination's answer, if the event has one.
        """
        message.state = state
        entry = LogEntry(
            self.clock.now(), message, state, message.events, error, next_delivery_time, response
        )
        message.events += 1
        self.state(message.user).logs.append(entry)
        self.store.log(entry)
        for listener in self.log_listeners:
            listener(entry)

    def logs(self, user: User) -> list[LogEntry]:
        """The user's log events, newest first; ties broken by message order and event index."""
        return list(self.state(user).logs.newest_first())

    # -- messages -----------------------------------------------------------------------------
    def get_message(self, user: User, message_id: str) -> Message:
        """A pending message, or one that finished within the retention window.

        Raises:
            ApiError: 404 when the user has no such message (or it finished too long ago).
        """
        message = self.state(user).messages.get(message_id) or self.finished.get(
            user.name, message_id
        )
        if message is None:
            raise not_found(f"message {message_id} not found")
        return message

    def pending_message(self, user: User, message_id: str) -> Message:
        """A message that is not finished yet.

        Raises:
            ApiError: 404 when the user has no such message (or it has finished).
        """
        message = self.state(user).messages.get(message_id)
        if message is None:
            raise not_found(f"message {message_id} not found")
        return message

    def run_now(self, user: User, message_id: str) -> Message:
        """Release a message waiting out its delay or its next retry at once ("Run now").

        It makes the attempt it was scheduled for, not an extra one. Anything the scheduler
        holds for a message (a delayed workflow step too) is released; a queued message, one in
        flight, held by a gate, already finished or with a cancel requested is refused (400).
        """
        message = self.get_message(user, message_id)
        if message.queue_name is not None:
            raise bad_request(
                f"message {message_id} was published to queue {message.queue_name}: "
                "queued messages can not be retried now"
            )
        timer = message.timer
        if message.in_flight or message.cancel_requested or timer is None or timer.cancelled:
            raise bad_request(f"message {message_id} is not waiting for a delay or a retry")
        timer.cancel()
        self.schedule(message, at=self.clock.now())
        return message

    def cancel(self, user: User, message_id: str) -> None:
        """Cancel one message (QStash's DELETE /v2/messages/{id}).

        An attempt already in flight completes, but a failure is then not retried. A finished
        message, even one still readable, is past cancelling: 404 as for any unknown message.

        Raises:
            ApiError: 404 when the user has no such unfinished message.
        """
        self._cancel(self.pending_message(user, message_id))

    def _cancel(self, message: Message) -> None:
        self.log(message, CANCEL_REQUESTED)
        if message.in_flight:
            # Too late to stop this attempt; it is not retried if it fails.
            message.cancel_requested = True
            return
        self.log(message, CANCELLED)
        self._finish(message)
        for gate in self.gates:
            gate.cancelled(message)

    def cancel_many(self, user: User, messages: Iterable[Message]) -> int:
        """Cancel those of `messages` not finished or being cancelled; returns how many."""
        count = 0
        for message in list(messages):
            if not message.finished and not message.cancel_requested:
                self._cancel(message)
                count += 1
        return count

    # -- DLQ ----------------------------------------------------------------------------------
    def dlq_entry(self, user: User, dlq_id: str) -> DlqEntry:
        """One DLQ entry by its dlq id.

        Raises:
            ApiError: 404 when the user's DLQ has no such entry.
        """
        entry = self.state(user).dlq.get(dlq_id)
        if entry is None:
            raise not_found(f"message {dlq_id} not found in DLQ")
        return entry

    def dlq_entries(self, user: User) -> list[DlqEntry]:
        """The user's DLQ, newest first."""
        return list(self.state(user).dlq.newest_first())

    def dlq_delete(self, user: User, dlq_ids: Iterable[str]) -> int:
        """Remove DLQ entries by id; returns how many existed."""
        dlq = self.state(user).dlq
        deleted = 0
        for dlq_id in list(dlq_ids):
            if dlq.pop(dlq_id, None) is not None:
                self.store.delete(_DLQ, user.name, dlq_id)
                deleted += 1
        return deleted

    def dlq_retry(self, user: User, entry: DlqEntry, spec: MessageSpec | None) -> dict[str, Any]:
        """Republish a DLQ entry as a new message and remove it from the DLQ.

        The new message keeps the old one's body, headers and settings; what `spec` (the retry
        request's headers) sets overrides them.

        Returns:
            `{"messageId": ...}` of the new message.
        """
        old = entry.message
        new_spec = MessageSpec(
            method=old.method,
            headers={k: list(v) for k, v in old.headers.items()},
            retries=old.max_retries,
            retry_delay=old.retry_delay,
            timeout=old.timeout,
            callback=old.callback,
            failure_callback=old.failure_callback,
            labels=list(old.labels),
            redact=old.redact,
            flow_control=old.flow_control,
        )
        if spec is not None:
            _override(new_spec, spec)
        message = self.new_message(
            user,
            old.url,
            new_spec,
            old.body,
            caller_ip=old.caller_ip,
            topic_name=old.topic_name,
            endpoint_name=old.endpoint_name,
            queue_name=old.queue_name,
            schedule_id=old.schedule_id,
            api=old.api,
            subject=old.subject,
            deliver_to=old.deliver_to,
        )
        del self.state(user).dlq[entry.dlq_id]
        self.store.delete(_DLQ, user.name, entry.dlq_id)
        self.schedule(message)
        return {"messageId": message.id}

    # -- signing keys -------------------------------------------------------------------------
    def rotate_keys(self, user: User) -> None:
        """Rotate the user's signing keys (the next key becomes current)."""
        self.users.rotate(user)
        self.store.put(_USER, user.name, user.name, user)


# Which spec field each retry-request header overrides.
_OVERRIDES = {
    "upstash-method": ("method",),
    "upstash-retries": ("retries",),
    "upstash-retry-delay": ("retry_delay",),
    "upstash-timeout": ("timeout",),
    "upstash-delay": ("delay",),
    "upstash-not-before": ("not_before",),
    "upstash-callback": ("callback",),
    "upstash-failure-callback": ("failure_callback",),
    "upstash-flow-control-key": ("flow_control",),
    "upstash-label": ("labels",),
    "upstash-redact-fields": ("redact",),
}


def _override(base: MessageSpec, given: MessageSpec) -> None:
    """Copy onto the old message's spec what the retry request's headers set."""
    for header, names in _OVERRIDES.items():
        if header in given.given:
            for name in names:
                setattr(base, name, getattr(given, name))
    for key, values in given.headers.items():
        base.headers[key] = list(values)


def compact_json(data: Any) -> bytes:
    """JSON as QStash writes it for a destination: compact, non-ASCII as is.

    Byte for byte what JavaScript's JSON.stringify gives back for the parsed value, so a
    receiver that re-serialises the body before checking the signature's body hash gets the
    same bytes.
    """
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def _header(response: Response, name: str) -> str | None:
    for key, values in response.headers.items():
        if key.lower() == name and values:
            return values[0].strip()
    return None


def _reason(status: int | None) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status or 0).phrase
    except ValueError:
        return ""
