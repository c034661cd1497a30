"""The one clock every timestamp and timer in the emulator reads."""

from __future__ import annotations

import time
from typing import Protocol

# 2025-01-01T00:00:00Z: a fixed start makes virtual timestamps identical on every run.
DEFAULT_EPOCH = 1_735_689_600.0


class Clock(Protocol):
    """Seconds since the Unix epoch, as a float."""

    virtual: bool

    def now(self) -> float: ...


class RealClock:
    """Wall time, for the standalone dev server."""

    virtual = False

    def now(self) -> float:
        return time.time()


class VirtualClock:
    """Time that moves only when the scheduler moves it (tests advance it explicitly)."""

    virtual = True

    def __init__(self, start: float = DEFAULT_EPOCH) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def set(self, t: float) -> None:
        # Time never runs backwards: a due entry in the past runs "now", it does not rewind.
        if t > self._now:
            self._now = float(t)


def ms(t: float) -> int:
    """Unix milliseconds, the unit of every timestamp in QStash's API."""
    return int(round(t * 1000))
