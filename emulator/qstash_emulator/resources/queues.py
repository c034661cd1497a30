"""Queues: FIFO delivery with at most `parallelism` messages of a queue in flight.

`Queues` is an engine Gate. A queued message reaching its due time is admitted while its queue
has a free slot and nothing older is waiting; otherwise it waits, and the gate starts it (FIFO)
when a slot frees up. State is kept here per user name; the backend's reset clears it.

Semantics chosen after features/queues.mdx ("the next message will wait for retries of the
current one ... and for callbacks or failure callbacks to finish"):
- a message keeps its slot while it waits for a retry: the slot frees only when the message is
  DELIVERED, FAILED or CANCELLED, and after that when the callbacks it spawned are final too;
- a paused queue starts nothing, retries included: a retry due while paused gives its slot back
  and waits at the head of the queue (in arrival order), so resume starts it first;
- deleting a queue cancels its unfinished messages (an attempt in flight completes, unretried).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..core.clock import ms
from ..core.engine import Engine
from ..core.errors import ApiError, bad_request, not_found
from ..core.state import Message
from ..core.users import User
from ..store.base import QUEUE

__all__ = ["NAME", "Queue", "Queues", "check_name"]

NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


def check_name(name: str, what: str = "queue") -> str:
    """Return `name` if QStash accepts it as a queue (or URL group) name.

    Raises:
        ApiError: 400 for a name with characters other than letters, digits, - . _.
    """
    if not isinstance(name, str) or not NAME.match(name):
        raise bad_request(
            f"invalid {what} name: {name!r}: it can only contain alphanumeric characters, "
            "hyphens, periods and underscores"
        )
    return name


@dataclass
class Queue:
    """One user's queue: settings, and the messages running and waiting in it (times in seconds)."""

    name: str
    created_at: float
    updated_at: float
    parallelism: int = 1
    paused: bool = False
    running: set[str] = field(default_factory=set)  # ids holding a slot
    waiting: deque[Message] = field(default_factory=deque)  # held, in arrival order
    arrival: dict[str, int] = field(default_factory=dict)  # message id -> arrival sequence


class Queues:
    """Every user's queues, and the gate that enforces them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._queues: dict[str, dict[str, Queue]] = {}
        self._seq = 0
        # Callbacks a finished message waits for before its slot frees: parent -> callback ids.
        self._blockers: dict[str, set[str]] = {}
        self._parent: dict[str, tuple[Queue, str]] = {}  # callback id -> (queue, parent id)

    def reset(self) -> None:
        """Forget every queue (a test's reset)."""
        self._queues.clear()
        self._blockers.clear()
        self._parent.clear()
        self._seq = 0

    # -- management ---------------------------------------------------------------------------
    def _of(self, user: User) -> dict[str, Queue]:
        return self._queues.setdefault(user.name, {})

    def find(self, user: User, name: str) -> Queue | None:
        """The user's queue `name`, or None."""
        return self._of(user).get(name)

    def get(self, user: User, name: str) -> Queue:
        """The user's queue `name`.

        Raises:
            ApiError: 400 for an invalid name, 404 for an unknown queue.
        """
        check_name(name)
        queue = self.find(user, name)
        if queue is None:
            raise not_found(f"queue {name} not found")
        return queue

    def all(self, user: User) -> list[Queue]:
        """The user's queues, oldest first."""
        return sorted(self._of(user).values(), key=lambda q: (q.created_at, q.name))

    def check_room(self, user: User, names: Iterable[str]) -> None:
        """Validate names and that creating the missing ones stays within the plan (no change)."""
        existing = self._of(user)
        new = {check_name(n) for n in names} - existing.keys()
        limit = user.quota.max_queues
        if new and len(existing) + len(new) > limit:
            plan = user.quota.name
            raise ApiError(
                412, f"exceeded the maximum number of queues ({limit}) of the {plan} plan"
            )

    def ensure(self, user: User, name: str) -> Queue:
        """The queue, created with parallelism 1 on first use (an existing one is unchanged)."""
        queue = self.find(user, name)
        if queue is None:
            self.check_room(user, [name])
            now = self.engine.clock.now()
            queue = self._of(user)[name] = Queue(name, now, now)
            self._saved(user, queue)
        return queue

    def _saved(self, user: User, queue: Queue) -> None:
        self.engine.store.put(QUEUE, user.name, queue.name, queue)

    def restore(self, user: User, queue: Queue) -> None:
        """A queue loaded from a store (at startup, before any message is re-armed)."""
        self._of(user)[queue.name] = queue

    def restore_slot(self, message: Message) -> None:
        """Give a restored, started queued message its slot back.

        A message that had started (in flight or waiting for a retry) held a slot before the
        restart; it holds it again, so the queue's order and parallelism carry over.
        """
        queue = self._queue_of(message)
        if queue is not None and len(queue.running) < queue.parallelism:
            self._seq += 1
            queue.arrival[message.id] = self._seq
            queue.running.add(message.id)

    def upsert(self, user: User, name: str, parallelism: int = 1, paused: bool = False) -> Queue:
        """Create or update a queue.

        Raises:
            ApiError: 400 for a bad name or parallelism, 412 past the plan's limits.
        """
        check_name(name)
        if isinstance(parallelism, bool) or not isinstance(parallelism, int) or parallelism < 1:
            raise bad_request(f"invalid parallelism: {parallelism!r}, must be an integer >= 1")
        limit = user.quota.max_queue_parallelism
        if parallelism > limit:
            raise ApiError(
                412,
                f"parallelism {parallelism} exceeds the {user.quota.name} plan's limit of {limit}",
            )
        queue = self.ensure(user, name)
        queue.parallelism = parallelism
        queue.paused = paused
        queue.updated_at = self.engine.clock.now()
        self._saved(user, queue)
        self._pump(queue)
        return queue

    def pause(self, user: User, name: str) -> None:
        """Stop starting the queue's messages (those in flight finish)."""
        queue = self.get(user, name)
        queue.paused = True
        queue.updated_at = self.engine.clock.now()
        self._saved(user, queue)

    def resume(self, user: User, name: str) -> None:
        """Start the queue's waiting messages again, up to its parallelism."""
        queue = self.get(user, name)
        queue.paused = False
        queue.updated_at = self.engine.clock.now()
        self._saved(user, queue)
        self._pump(queue)

    def delete(self, user: User, name: str) -> None:
        """Delete the queue and cancel its messages."""
        queue = self.get(user, name)
        del self._of(user)[name]
        self.engine.store.delete(QUEUE, user.name, name)
        queue.waiting.clear()
        self.engine.cancel_many(user, self._members(user, name))

    def _members(self, user: User, name: str) -> list[Message]:
        return [
            m
            for m in self.engine.state(user).messages.values()
            if m.queue_name == name and m.kind == "message" and not m.finished
        ]

    def lag(self, user: User, queue: Queue) -> int:
        """Messages of the queue not yet delivered, failed or cancelled."""
        return len(self._members(user, queue.name))

    def json(self, user: User, queue: Queue) -> dict[str, object]:
        """A queue as GET /v2/queues answers it."""
        return {
            "name": queue.name,
            "createdAt": ms(queue.created_at),
            "updatedAt": ms(queue.updated_at),
            "parallelism": queue.parallelism,
            "paused": queue.paused,
            "lag": self.lag(user, queue),
        }

    # -- the gate -----------------------------------------------------------------------------
    def _queue_of(self, message: Message) -> Queue | None:
        if message.queue_name is None or message.kind != "message":
            return None
        return self.find(message.user, message.queue_name)

    def admit(self, message: Message) -> bool:
        """Let a queue's message start if the queue runs, none waits ahead and a slot is free.

        Otherwise hold it, in arrival order. Messages outside queues, and callbacks, are always
        admitted.
        """
        if message.queue_name is None or message.kind != "message":
            return True
        # A DLQ retry may name a queue deleted since; QStash creates queues on first use.
        queue = self.find(message.user, message.queue_name)
        if queue is None:
            now = self.engine.clock.now()
            queue = self._of(message.user)[message.queue_name] = Queue(message.queue_name, now, now)
            self._saved(message.user, queue)
        if message.id not in queue.arrival:
            self._seq += 1
            queue.arrival[message.id] = self._seq
        if message.id in queue.running:
            if not queue.paused:
                return True  # a retry keeps its slot
            queue.running.discard(message.id)
            self._hold(queue, message)
            return False
        if queue.paused or queue.waiting or len(queue.running) >= queue.parallelism:
            self._hold(queue, message)
            return False
        queue.running.add(message.id)
        return True

    def _hold(self, queue: Queue, message: Message) -> None:
        seq = queue.arrival[message.id]
        index = len(queue.waiting)
        while index > 0 and queue.arrival.get(queue.waiting[index - 1].id, 0) > seq:
            index -= 1
        queue.waiting.insert(index, message)

    def done(self, message: Message) -> None:
        """Free the message's slot once it has finished, starting the next waiting one.

        A message that will be retried keeps its slot (QStash delivers a queue in order).
        """
        link = self._parent.get(message.id)
        if link is not None:
            if message.finished:
                self._callback_final(message.id)
            return
        queue = self._queue_of(message)
        if queue is None or message.id not in queue.running or not message.finished:
            return  # not queued, or retrying: it keeps its slot
        callbacks = self._pending_callbacks(message)
        if callbacks:
            self._blockers[message.id] = {c.id for c in callbacks}
            for c in callbacks:
                self._parent[c.id] = (queue, message.id)
            return
        self._release(queue, message.id)

    def cancelled(self, message: Message) -> None:
        """Forget a waiting message that was cancelled, or free its slot."""
        if message.id in self._parent:
            self._callback_final(message.id)
            return
        queue = self._queue_of(message)
        if queue is None:
            return
        for index, held in enumerate(queue.waiting):
            if held is message:  # identity: Message compares by value
                del queue.waiting[index]
                queue.arrival.pop(message.id, None)
                return
        if message.id in queue.running:
            self._release(queue, message.id)

    def _pending_callbacks(self, message: Message) -> list[Message]:
        if message.callback is None and message.failure_callback is None:
            return []
        # Callbacks carry the parent's order as a prefix (engine._spawn_callback).
        n = len(message.order)
        return [
            m
            for m in self.engine.state(message.user).messages.values()
            if m.kind != "message"
            and len(m.order) > n
            and m.order[:n] == message.order
            and not m.finished
        ]

    def _callback_final(self, callback_id: str) -> None:
        queue, parent = self._parent.pop(callback_id)
        pending = self._blockers.get(parent)
        if pending is None:
            return
        pending.discard(callback_id)
        if not pending:
            del self._blockers[parent]
            self._release(queue, parent)

    def _release(self, queue: Queue, message_id: str) -> None:
        queue.running.discard(message_id)
        queue.arrival.pop(message_id, None)
        self._pump(queue)

    def _pump(self, queue: Queue) -> None:
        """Start waiting messages, oldest first, while the queue has free slots."""
        while not queue.paused and queue.waiting and len(queue.running) < queue.parallelism:
            message = queue.waiting.popleft()
            if message.finished:
                queue.arrival.pop(message.id, None)
                continue
            queue.running.add(message.id)
            self.engine.start(message, self)
