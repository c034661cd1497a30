"""Injectable rate limits, per user, on the emulator's clock.

QStash's daily message limit, its burst limit on the non-publishing endpoints, and the chat
API's request and token limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..core.clock import Clock
from ..core.errors import ApiError

__all__ = ["LimitConfig", "Limits"]

_DAY = 86400.0
_MINUTE = 60.0


@dataclass
class LimitConfig:
    """The rate limits of one user (None: unlimited), as `Limits.configure` sets them."""

    daily_messages: int | None = None  # messages a day (publish, enqueue, batch entries)
    burst: int | None = None  # requests a second on the other endpoints
    chat_requests: int | None = None  # chat requests a minute
    chat_tokens: int | None = None  # chat tokens a minute


@dataclass
class _Window:
    start: float = -math.inf
    used: int = 0
    tokens: int = 0


@dataclass
class _Usage:
    day: _Window = field(default_factory=_Window)
    second: _Window = field(default_factory=_Window)
    minute: _Window = field(default_factory=_Window)


def _roll(window: _Window, now: float, length: float) -> float:
    """Start a new window when the old one is over; returns when the current one ends."""
    start = math.floor(now / length) * length  # windows align to the clock (midnight UTC, :00)
    if start != window.start:
        window.start, window.used, window.tokens = start, 0, 0
    return start + length


class Limits:
    """Injected rate limits and their usage, per user, counted on the emulator's clock.

    No limit applies until one is configured (`emu.limits.configure(...)`).

    Args:
        clock: The clock usage windows roll with.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.default = LimitConfig()
        self._per_user: dict[str, LimitConfig] = {}
        self._usage: dict[str, _Usage] = {}

    def configure(self, user: str | None = None, **limits: int | None) -> LimitConfig:
        """Set limits for one user (or the default for all); `None` lifts a limit."""
        unknown = set(limits) - set(LimitConfig.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unknown limits: {', '.join(sorted(unknown))}")
        config = self.default if user is None else self._per_user.setdefault(user, LimitConfig())
        for name, value in limits.items():
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0")
            setattr(config, name, value)
        return config

    @property
    def active(self) -> bool:
        """Whether any limit is set (the middleware skips all work when none is)."""
        return self.default != LimitConfig() or any(
            c != LimitConfig() for c in self._per_user.values()
        )

    def config(self, user: str) -> LimitConfig:
        """The limits in force for `user` (its own, or the default ones)."""
        return self._per_user.get(user, self.default)

    def reset(self) -> None:
        """Lift every limit and forget usage (a test's reset)."""
        self.default = LimitConfig()
        self._per_user.clear()
        self._usage.clear()

    def _usage_of(self, user: str) -> _Usage:
        return self._usage.setdefault(user, _Usage())

    def check_messages(self, user: str, count: int = 1) -> None:
        """Raise QStash's 429 when `count` more messages would pass today's limit."""
        limit = self.config(user).daily_messages
        if limit is None:
            return
        window = self._usage_of(user).day
        reset = _roll(window, self.clock.now(), _DAY)
        if window.used + count > limit:
            raise ApiError(
                429,
                f"daily message limit of {limit} exceeded; it resets at midnight UTC",
                {
                    "RateLimit-Limit": str(limit),
                    "RateLimit-Remaining": str(max(0, limit - window.used)),
                    "RateLimit-Reset": str(int(reset)),
                },
            )

    def count_messages(self, user: str, count: int = 1) -> None:
        """Count messages a request created (only accepted ones count toward the limit)."""
        if self.config(user).daily_messages is not None:
            window = self._usage_of(user).day
            _roll(window, self.clock.now(), _DAY)
            window.used += count

    def check_burst(self, user: str) -> None:
        """Count one request toward the per-second burst limit.

        Raises:
            ApiError: 429 with Burst-RateLimit-* headers when the limit is exhausted.
        """
        limit = self.config(user).burst
        if limit is None:
            return
        window = self._usage_of(user).second
        reset = _roll(window, self.clock.now(), 1.0)
        if window.used >= limit:
            raise ApiError(
                429,
                f"burst rate limit of {limit} requests per second exceeded",
                {
                    "Burst-RateLimit-Limit": str(limit),
                    "Burst-RateLimit-Remaining": "0",
                    "Burst-RateLimit-Reset": str(math.ceil(reset)),
                },
            )
        window.used += 1

    def check_chat(self, user: str, tokens: int) -> dict[str, str] | None:
        """None when the chat request may go ahead (it is counted); else the 429's headers."""
        config = self.config(user)
        if config.chat_requests is None and config.chat_tokens is None:
            return None
        window = self._usage_of(user).minute
        reset = _roll(window, self.clock.now(), _MINUTE)
        over_requests = config.chat_requests is not None and window.used >= config.chat_requests
        over_tokens = config.chat_tokens is not None and window.tokens + tokens > config.chat_tokens
        wait = f"{max(0.0, reset - self.clock.now()):g}s"
        headers = {
            "x-ratelimit-limit-requests": str(config.chat_requests or 0),
            "x-ratelimit-limit-tokens": str(config.chat_tokens or 0),
            "x-ratelimit-remaining-requests": str(
                max(0, (config.chat_requests or 0) - window.used - (0 if over_requests else 1))
            ),
            "x-ratelimit-remaining-tokens": str(max(0, (config.chat_tokens or 0) - window.tokens)),
            "x-ratelimit-reset-requests": wait,
            "x-ratelimit-reset-tokens": wait,
        }
        if over_requests or over_tokens:
            return headers
        window.used += 1
        window.tokens += tokens
        return None
