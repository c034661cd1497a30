"""Plan limits of the dev server's quota tiers (`-quota payg|pro`).

Values follow Upstash's public QStash pricing page (the reference only links to it); they are
the limits a publish is checked against, so a test sees the errors the real plan gives.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["QUOTAS", "Quota"]

_DAY = 86400.0


@dataclass(frozen=True)
class Quota:
    """The limits of one plan tier (seconds and bytes as commented per field)."""

    name: str
    max_retries: int
    max_delay: float  # seconds
    max_message_size: int  # bytes
    max_timeout: float  # seconds a delivery may take (Max HTTP Response Duration)
    max_queues: int
    max_queue_parallelism: int
    max_schedules: int
    max_url_groups: int
    max_endpoints_per_group: int


QUOTAS = {
    "payg": Quota(
        name="payg",
        max_retries=5,
        max_delay=365 * _DAY,
        max_message_size=1_000_000,
        max_timeout=2 * 3600.0,
        max_queues=100,
        max_queue_parallelism=100,
        max_schedules=1000,
        max_url_groups=1000,
        max_endpoints_per_group=1000,
    ),
    "pro": Quota(
        name="pro",
        max_retries=20,
        max_delay=3650 * _DAY,
        max_message_size=10_000_000,
        max_timeout=2 * 3600.0,
        max_queues=1000,
        max_queue_parallelism=1000,
        max_schedules=10000,
        max_url_groups=10000,
        max_endpoints_per_group=10000,
    ),
}
