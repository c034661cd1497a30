"""The one clock every timestamp and timer in the emulator reads."""

from __future__ import annotations

import calendar
import contextlib
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

__all__ = [
    "DEFAULT_EPOCH",
    "Clock",
    "RealClock",
    "VirtualClock",
    "ms",
    "real_monotonic",
    "wall_time",
]

# 2025-01-01T00:00:00Z: a fixed start makes virtual timestamps identical on every run.
DEFAULT_EPOCH = 1_735_689_600.0
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _real(name: str) -> Any:
    # If freezegun is already active at import, its saved originals are the real functions.
    api = sys.modules.get("freezegun.api")
    return getattr(api, "real_" + name, None) or getattr(time, name)


class _Real:
    """The real time functions, kept in a class: freezegun's module scan does not look there."""

    time = staticmethod(_real("time"))
    monotonic = staticmethod(_real("monotonic"))


def _freeze_factory() -> Any | None:
    """Freezegun's innermost active freeze (its time factory), or None (freezegun is optional)."""
    api = sys.modules.get("freezegun.api")
    factories = getattr(api, "freeze_factories", None)
    return factories[-1] if factories else None


def _factory_time(factory: Any) -> float:
    # A StepTickTimeFactory moves on every call: read it without ticking it.
    dt = factory.time_to_freeze if hasattr(factory, "step_width") else factory()
    return float(calendar.timegm(dt.timetuple()) + dt.microsecond / 1_000_000)


def _frozen_time() -> float | None:
    """The frozen time while a `freeze_time` is active, else None."""
    factory = _freeze_factory()
    return None if factory is None else _factory_time(factory)


def wall_time() -> float:
    """The time a delivery's receiver checks signatures against.

    Under freezegun the app reads the frozen time, so signatures are stamped with it;
    otherwise this is the real time.
    """
    frozen = _frozen_time()
    return _Real.time() if frozen is None else frozen


def real_monotonic() -> float:
    """Monotonic time freezegun does not freeze (for the emulator's own event loop)."""
    return float(_Real.monotonic())


class Clock(Protocol):
    """Seconds since the Unix epoch, as a float."""

    virtual: bool

    def now(self) -> float:
        """Seconds since the Unix epoch."""


class RealClock:
    """Wall time, for the standalone dev server."""

    virtual = False

    def now(self) -> float:
        """`time.time()`."""
        return time.time()


class VirtualClock:
    """Time that moves only when the scheduler moves it (tests advance it explicitly).

    With `follow_freezegun` (the default) it is one clock with freezegun's: a new `freeze_time`
    starts a new timeline at its frozen time; reads never lag behind the frozen time, so
    `tick()`/`move_to()` move it (work that fell due meanwhile runs at the next
    `Scheduler.catch_up`, at its own due time); and when the scheduler moves time forward the
    frozen time moves along, so the app's `time.time()` agrees with the emulator.
    """

    virtual = True
    # freezegun keeps microseconds: a frozen time within this of ours is the same instant.
    _RESOLUTION = 1e-6

    def __init__(self, start: float = DEFAULT_EPOCH, *, follow_freezegun: bool = True) -> None:
        self.start = self._now = float(start)
        self.follow_freezegun = follow_freezegun
        self._factory: Any = None  # the freeze this clock follows
        self._pinned = 0

    def now(self) -> float:
        """The virtual time, or freezegun's frozen time when that is ahead and followed."""
        if self.follow_freezegun and not self._pinned:
            frozen = self._frozen()
            if frozen is not None and frozen > self._now + self._RESOLUTION:
                return frozen
        return self._now

    def _frozen(self) -> float | None:
        factory = _freeze_factory()
        if factory is None:
            return None
        t = _factory_time(factory)
        if factory is not self._factory:
            # A new freeze: its frozen time is now, even if that lies before our time.
            self._factory = factory
            self._now = t
        return t

    def set(self, t: float) -> None:
        """Move to `t`, never backwards; a followed freezegun time moves along."""
        if self.follow_freezegun:
            self._frozen()
        # Time never runs backwards: a due entry in the past runs "now", it does not rewind.
        if t > self._now:
            self._now = float(t)
            current = _freeze_factory()
            # The frozen time moves along (the app's time.time() agrees), never backwards.
            if (
                current is not None
                and current is self._factory
                and _factory_time(current) < t - self._RESOLUTION
            ):
                current.move_to(_UNIX_EPOCH + timedelta(seconds=t))

    @contextlib.contextmanager
    def pinned(self) -> Iterator[None]:
        """Read only this clock's own time, not a frozen time ahead of it.

        Used while the scheduler catches up with freezegun, so each piece of work runs at its own
        due time.
        """
        self._pinned += 1
        try:
            yield
        finally:
            self._pinned -= 1

    def reset(self, start: float | None = None) -> None:
        """Back to `start`, by default the time this clock started at."""
        self._now = self.start if start is None else float(start)
        self._factory = None


def ms(t: float) -> int:
    """Unix milliseconds, the unit of every timestamp in QStash's API."""
    return round(t * 1000)
