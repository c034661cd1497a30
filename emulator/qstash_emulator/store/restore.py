"""Startup: rebuild a fresh backend's state from a SQLite file, then re-arm its timers.

Restored: users and their signing keys, id counters (ids never repeat), a virtual clock's time,
every message (unfinished ones re-armed at their next attempt time; one in flight when the
process died is attempted again at once, as at-least-once delivery allows), logs, delivered and
failed messages still in their retention window (readable by id), the DLQ, deduplication ids
still in their window, queues (paused or not; a message that held a slot holds it again), URL
groups, flow-control keys (settings, pins, paused) and schedules (armed at their next fire
time; one whose time passed while the emulator was down fires once, at once). Kinds registered
by features outside the core (`Store.register`: workflow runs and waiters, LLM queue jobs) are
handed to their own restorers.
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any

from ..core.quotas import QUOTAS
from ..core.state import (
    ACTIVE,
    CANCELLED,
    DELIVERED,
    ERROR,
    FAILED,
    RETRY,
    DlqEntry,
    LogEntry,
    Message,
)
from ..core.users import User
from ..parsing.cron import CronSpec
from ..resources.flow_control import KeyState
from ..resources.queues import Queue
from ..resources.schedules import Schedule
from ..resources.url_groups import Endpoint, UrlGroup
from . import codec
from .base import DEDUP, DLQ, FLOW_KEY, QUEUE, SCHEDULE, URL_GROUP, Restorer

if TYPE_CHECKING:
    from ..backend import Backend

__all__ = ["restore"]

# States of a message that has had an attempt: in a queue it holds its slot.
_STARTED = (ACTIVE, ERROR, RETRY)


def restore(
    backend: Backend,
    conn: sqlite3.Connection,
    extra: dict[str, Restorer] | None = None,
) -> int:
    """Load everything saved in `conn` into `backend` and re-arm its timers.

    Args:
        backend: A freshly built backend, on its running loop.
        conn: The open data file.
        extra: Restorers of kinds registered by features outside the core (`Store.register`).

    Returns:
        The number of unfinished messages re-armed.
    """
    extra = extra or {}
    engine = backend.engine
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    if "ids" in meta:
        backend.ids.restore(json.loads(meta["ids"]))
    if "clock" in meta and backend.clock.virtual:
        backend.clock.set(float(meta["clock"]))  # type: ignore[attr-defined]
    users = _restore_users(backend, conn)
    now = backend.clock.now()

    messages: dict[str, Message] = {}
    pending: list[tuple[float, Message]] = []
    rows = conn.execute(
        "SELECT id, user, data, body, state, retried, events, due, cancel_requested, finished"
        " FROM messages ORDER BY rowid"
    )
    # A message written again after it finished has a later row too: the last one is it.
    latest = {row[0]: row for row in rows}
    for mid, name, data, body, state, retried, events, due, cancel, finished in latest.values():
        user = users.get(name)
        if user is None:
            continue
        message = codec.load_message(mid, user, json.loads(data), body, state, retried, events)
        messages[mid] = message
        if finished:
            continue
        engine.state(user).messages[mid] = message
        if cancel:
            pending.append((-1.0, message))  # cancelled while in flight: finish it below
        else:
            # Held by a gate or in flight (no timer): due since it first became due, so
            # re-admission keeps arrival order.
            pending.append((min(message.not_before, now) if due is None else due, message))

    finished_at: dict[str, float] = {}
    for mid, idx, time, state, error, next_time, response in conn.execute(
        "SELECT message_id, idx, time, state, error, next_delivery_time, response"
        " FROM logs ORDER BY seq"
    ):
        logged = messages.get(mid)
        if logged is None:
            continue
        loaded = codec.load_response(None if response is None else json.loads(response))
        # The row's count may lag its log (an ACTIVE event updates no row): continue after both.
        logged.events = max(logged.events, idx + 1)
        if state in (DELIVERED, FAILED):
            finished_at[mid] = time
        engine.state(logged.user).logs.append(
            LogEntry(time, logged, state, idx, error, next_time, loaded)
        )

    # Delivered and failed messages still in their retention window stay readable by id.
    window = engine.finished.window
    for mid, at in sorted(finished_at.items(), key=lambda item: item[1]):
        if at + window > now and messages[mid].state in (DELIVERED, FAILED):
            engine.finished.keep(messages[mid])

    schedules: list[Schedule] = []
    for kind, name, key, data, body in conn.execute(
        "SELECT kind, user, key, data, body FROM objects ORDER BY rowid"
    ):
        user = users.get(name)
        if user is not None and kind in extra:
            extra[kind](backend, name, key, json.loads(data), body)
        elif user is not None:
            _restore_object(backend, user, kind, key, json.loads(data), body, messages, now)
            if kind == SCHEDULE:
                schedules.append(_schedule(user, key, json.loads(data), body, messages))

    # Timers last, in (due, order) order, so work due at once starts as it was queued.
    count = 0
    for due, message in sorted(pending, key=lambda p: (p[0], p[1].order)):
        if due < 0:
            engine.log(message, CANCELLED)
            engine.state(message.user).messages.pop(message.id, None)
            continue
        if message.kind == "message" and message.state in _STARTED:
            backend.queues.restore_slot(message)
        engine.schedule(message, at=due)
        count += 1
    for schedule in schedules:
        backend.schedules.restore(schedule)
    return count


def _restore_users(backend: Backend, conn: sqlite3.Connection) -> dict[str, User]:
    for name, token, current, nxt, quota in conn.execute(
        "SELECT name, token, current_key, next_key, quota FROM users"
    ):
        try:
            user = backend.users[name]
        except KeyError:
            backend.users.add(
                name,
                token=token,
                current=current,
                next=nxt,
                quota=quota if quota in QUOTAS else None,
            )
            continue
        # Keys after a rotation; the token and quota come from this run's settings.
        user.current_signing_key, user.next_signing_key = current, nxt
    return {u.name: u for u in backend.users}


def _restore_object(
    backend: Backend,
    user: User,
    kind: str,
    key: str,
    data: Any,
    body: bytes | None,
    messages: dict[str, Message],
    now: float,
) -> None:
    engine = backend.engine
    if kind == DLQ:
        message = messages.get(data["message"])
        response = codec.load_response(data["response"])
        if message is not None and response is not None:
            engine.state(user).dlq[key] = DlqEntry(key, message, response, data["time"])
    elif kind == DEDUP:
        if data["expiry"] > now:
            engine.state(user).dedup[key] = (data["message"], data["expiry"])
    elif kind == QUEUE:
        queue = Queue(data["name"], data["created_at"], data["updated_at"])
        queue.parallelism, queue.paused = data["parallelism"], data["paused"]
        backend.queues.restore(user, queue)
    elif kind == URL_GROUP:
        group = UrlGroup(data["name"], data["created_at"], data["updated_at"])
        group.endpoints = [Endpoint(url, name) for url, name in data["endpoints"]]
        backend.url_groups.restore(user, group)
    elif kind == FLOW_KEY:
        st = KeyState(key, data["parallelism"], data["rate"], data["period"])
        st.pinned_parallelism, st.pinned_rate = data["pinned_parallelism"], data["pinned_rate"]
        st.paused = data["paused"]
        backend.flow_control.restore(user, st)


def _schedule(
    user: User, key: str, data: Any, body: bytes | None, messages: dict[str, Message]
) -> Schedule:
    return Schedule(
        id=key,
        user=user,
        destination=data["destination"],
        cron=CronSpec.parse(data["cron"]),
        spec=codec.load_spec(data["spec"]),
        body=body or b"",
        created_at=data["created_at"],
        caller_ip=data["caller_ip"],
        order=tuple(data["order"]),
        paused=data["paused"],
        last_time=data["last_time"],
        next_time=data["next_time"],
        last_messages={mid: messages.get(mid) for mid in data["last_messages"]},
        error=data["error"],
    )
