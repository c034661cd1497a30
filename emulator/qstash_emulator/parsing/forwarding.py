"""Which headers may reach a destination as forwarded.

That is, from `Upstash-Forward-*`, `Upstash-Header-Forward: true`, `Upstash-Callback-Forward-*`,
batch and schedule headers. Hop-by-hop and framing headers describe one HTTP connection, not
the message: forwarded verbatim, a `Content-Length: 3` would cut the body to three bytes (and
break the signature's body hash) and a `Transfer-Encoding: chunked` would break framing.
Headers the emulator sets itself on every delivery replace any forwarded value, so they never
arrive twice (a stale forwarded `Upstash-Signature` must not come before the real one). SDKs
that forward every incoming header on each message (Upstash Workflow does) depend on both.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

__all__ = ["HOP_BY_HOP", "SET_ON_DELIVERY", "connection_tokens", "drop_reserved", "forwardable"]

HOP_BY_HOP = frozenset(
    {
        "connection",
        "content-length",
        "host",
        "keep-alive",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Set on every delivery by the emulator (engine.outgoing_headers); a forwarded value is dropped.
SET_ON_DELIVERY = frozenset(
    {
        "user-agent",
        "upstash-signature",
        "upstash-message-id",
        "upstash-retried",
        "upstash-caller-ip",
        "upstash-topic-name",
        "upstash-schedule-id",
    }
)


def connection_tokens(values: Iterable[str]) -> frozenset[str]:
    """The header names a `Connection` header lists (they are hop-by-hop too)."""
    return frozenset(
        token.strip().lower() for value in values for token in value.split(",") if token.strip()
    )


def forwardable(name: str, also_hop_by_hop: frozenset[str] = frozenset()) -> bool:
    """Whether a header may reach the destination as forwarded.

    Args:
        name: The header's name (any case).
        also_hop_by_hop: Lower-case names a `Connection` header listed (hop-by-hop too).
    """
    lower = name.strip().lower()
    return not (
        lower in HOP_BY_HOP
        or lower.startswith("proxy-")
        or lower in SET_ON_DELIVERY
        or lower in also_hop_by_hop
    )


# Verdicts of `forwardable` by name alone: a message's headers are checked on publish and again
# on every attempt, and the names repeat ("Content-Type", ...).
@functools.lru_cache(maxsize=4096)
def _verdict(name: str) -> bool:
    return forwardable(name)


def drop_reserved(
    pairs: Iterable[tuple[str, str]], also_hop_by_hop: frozenset[str] = frozenset()
) -> list[tuple[str, str]]:
    """The `(name, value)` pairs `forwardable` accepts.

    Headers a `Connection` among the pairs names, and those in `also_hop_by_hop`, are dropped
    too.
    """
    pairs = list(pairs)
    # Nothing to drop (so no Connection header either, itself hop-by-hop): the usual case.
    if not also_hop_by_hop and all([_verdict(name) for name, _ in pairs]):
        return pairs
    named = also_hop_by_hop | connection_tokens(v for k, v in pairs if k.lower() == "connection")
    return [(k, v) for k, v in pairs if forwardable(k, named)]
