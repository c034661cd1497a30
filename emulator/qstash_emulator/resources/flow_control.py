"""Flow control: per-key parallelism and rate limits across every message carrying the key.

`FlowControl` is an engine Gate. A message with `Upstash-Flow-Control-Key` is admitted when its
key has a free parallelism slot and room in the current rate window; otherwise it joins the key's
FIFO wait list. A finished attempt frees a slot (`done`), and a full rate window re-opens at its
period boundary through a scheduler entry, so waiting works the same on the virtual and the
real clock. Rate windows are fixed: a window starts at the first admission after the previous
one ended (or at a release at its boundary) and lasts `period` seconds.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ..core.engine import Engine
from ..core.errors import bad_request, not_found
from ..core.scheduler import Timer
from ..core.state import FlowControlSpec, Message
from ..core.users import User
from ..store.base import FLOW_KEY

__all__ = ["FlowControl", "KeyState"]

# What /v2/globalParallelism reports as the maximum (reported, not enforced).
_GLOBAL_PARALLELISM_MAX = 500


@dataclass
class KeyState:
    """One flow-control key of a user: its limits, usage in the current rate window, and waiters."""

    key: str
    parallelism: int | None = None
    rate: int | None = None
    period: float = 1.0
    pinned_parallelism: bool = False
    pinned_rate: bool = False
    paused: bool = False
    active: set[str] = field(default_factory=set)  # ids of admitted messages still in flight
    rate_count: int = 0
    period_start: float | None = None
    waiting: deque[Message] = field(default_factory=deque)
    timer: Timer | None = None

    def configure(self, fc: FlowControlSpec) -> None:
        """The latest message's configuration wins, except for what is pinned."""
        if not self.pinned_parallelism:
            self.parallelism = fc.parallelism
        if not self.pinned_rate:
            self.rate, self.period = fc.rate, fc.period

    def roll(self, now: float) -> None:
        """Start a new rate window if the current one ended before `now` (clock seconds)."""
        if self.period_start is not None and now >= self.period_start + self.period:
            self.period_start, self.rate_count = None, 0

    def has_room(self, now: float) -> bool:
        """Whether another message may start now (parallelism and rate both allow it)."""
        self.roll(now)
        if self.parallelism is not None and len(self.active) >= self.parallelism:
            return False
        return self.rate is None or self.rate_count < self.rate

    def take(self, message: Message, now: float) -> None:
        """Count `message` as started at `now`."""
        if self.period_start is None:
            self.period_start = now
        self.rate_count += 1
        self.active.add(message.id)

    @property
    def rate_full(self) -> bool:
        """Whether this rate window's starts are used up."""
        return self.rate is not None and self.rate_count >= self.rate


class FlowControl:
    """The flow-control gate and its management API (one per backend)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._by_user: dict[str, dict[str, KeyState]] = {}

    def reset(self) -> None:
        """Forget every key and cancel its release timers (a test's reset)."""
        for keys in self._by_user.values():
            for st in keys.values():
                if st.timer is not None:
                    st.timer.cancel()
        self._by_user.clear()

    def _keys(self, user: User) -> dict[str, KeyState]:
        return self._by_user.setdefault(user.name, {})

    # -- the Gate ---------------------------------------------------------------------------
    def admit(self, message: Message) -> bool:
        """Let a message start if its key runs, none waits and it has room; else hold it."""
        fc = message.flow_control
        if fc is None:
            return True
        keys = self._keys(message.user)
        st = keys.get(fc.key)
        if st is None:
            st = keys[fc.key] = KeyState(fc.key)
        st.configure(fc)
        self.engine.store.put(FLOW_KEY, message.user.name, fc.key, st)
        now = self.engine.clock.now()
        if not st.paused and not st.waiting and st.has_room(now):
            st.take(message, now)
            return True
        st.waiting.append(message)
        self._release(st)  # a grown limit may let waiters (this one included) go now
        return False

    def done(self, message: Message) -> None:
        """Free the message's slot after an attempt, starting a waiting message if one fits."""
        fc = message.flow_control
        if fc is None:
            return
        st = self._keys(message.user).get(fc.key)
        if st is not None and message.id in st.active:
            st.active.discard(message.id)
            self._release(st)

    def cancelled(self, message: Message) -> None:
        """Forget a held message that was cancelled, or free its slot."""
        fc = message.flow_control
        st = self._keys(message.user).get(fc.key) if fc is not None else None
        if st is None:
            return
        for i, waiting in enumerate(st.waiting):
            if waiting is message:
                del st.waiting[i]
                return
        if message.id in st.active and not message.in_flight:
            # Admitted but cancelled before its attempt began: no `done` will come for it.
            st.active.discard(message.id)
            self._release(st)

    def _release(self, st: KeyState) -> None:
        """Start waiters while there is room; re-arm the window timer if the rate is the limit."""
        now = self.engine.clock.now()
        while st.waiting and not st.paused and st.has_room(now):
            message = st.waiting.popleft()
            if message.finished:
                continue
            st.take(message, now)
            self.engine.start(message, self)
        if st.waiting and not st.paused and st.rate_full and st.period_start is not None:
            self._arm(st, st.period_start + st.period)

    def _arm(self, st: KeyState, due: float) -> None:
        if st.timer is not None and not st.timer.cancelled and st.timer.due == due:
            return
        if st.timer is not None:
            st.timer.cancel()

        async def reopen() -> None:
            if st.timer is timer:
                st.timer = None
                self._release(st)

        timer = self.engine.scheduler.call_at(due, reopen, st.waiting[0].order)
        st.timer = timer

    # -- management API ---------------------------------------------------------------------
    def get(self, user: User, key: str) -> KeyState:
        """A key of the user, its rate window rolled to now.

        Raises:
            ApiError: 404 for an unknown key.
        """
        st = self._keys(user).get(key)
        if st is None:
            raise not_found(f"flow control key {key} not found")
        st.roll(self.engine.clock.now())
        return st

    def list(self, user: User) -> list[KeyState]:
        """The user's keys, sorted by name, their rate windows rolled to now."""
        now = self.engine.clock.now()
        keys = sorted(self._keys(user).values(), key=lambda st: st.key)
        for st in keys:
            st.roll(now)
        return keys

    def restore(self, user: User, st: KeyState) -> None:
        """A key loaded from a store (settings, pins, paused; its rate window starts afresh)."""
        self._keys(user)[st.key] = st

    def _saved(self, user: User, st: KeyState) -> None:
        self.engine.store.put(FLOW_KEY, user.name, st.key, st)

    def pause(self, user: User, key: str) -> None:
        """New and waiting messages stay in the wait list; the rate window keeps elapsing."""
        st = self.get(user, key)
        st.paused = True
        self._saved(user, st)

    def resume(self, user: User, key: str) -> None:
        """Let the key's messages start again."""
        st = self.get(user, key)
        st.paused = False
        self._saved(user, st)
        self._release(st)

    def pin(
        self,
        user: User,
        key: str,
        *,
        parallelism: int | None = None,
        rate: int | None = None,
        period: float | None = None,
    ) -> None:
        """Fix the configuration against incoming messages; resets the rate window."""
        if parallelism is None and rate is None:
            raise bad_request("give parallelism, rate or both to pin")
        if period is not None and rate is None:
            raise bad_request("period can only be pinned together with rate")
        for name, value in (("parallelism", parallelism), ("rate", rate), ("period", period)):
            if value is not None and value < 1:
                raise bad_request(f"invalid {name}: {value}, must be at least 1")
        st = self.get(user, key)
        if parallelism is not None:
            st.parallelism, st.pinned_parallelism = parallelism, True
        if rate is not None:
            st.rate, st.pinned_rate = rate, True
            st.period = period if period is not None else st.period
        st.rate_count, st.period_start = 0, None
        self._saved(user, st)
        self._release(st)

    def unpin(self, user: User, key: str, *, parallelism: bool, rate: bool) -> None:
        """The pinned values stay in force until a message brings a configuration."""
        st = self.get(user, key)
        if parallelism:
            st.pinned_parallelism = False
        if rate:
            st.pinned_rate = False
        self._saved(user, st)

    def reset_rate(self, user: User, key: str) -> None:
        """Clear the count and start a new window now."""
        st = self.get(user, key)
        st.rate_count, st.period_start = 0, self.engine.clock.now()
        if st.timer is not None:
            st.timer.cancel()
            st.timer = None
        self._release(st)

    def global_parallelism(self, user: User) -> tuple[int, int]:
        """(maximum, current): flow-controlled messages in flight across the user's keys."""
        return _GLOBAL_PARALLELISM_MAX, sum(len(st.active) for st in self._keys(user).values())
