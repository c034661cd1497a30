"""Deterministic ids: the same seed and the same sequence of calls give the same ids."""

from __future__ import annotations

import hashlib

__all__ = ["IdSource", "b58", "digest"]

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


# Two base-58 digits at a time: half the big-integer divisions (ids are made per message).
_PAIRS = [a + b for a in _B58 for b in _B58]


def b58(data: bytes) -> str:
    """Base58 (Bitcoin alphabet) text of `data`, as QStash's ids use."""
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58 * 58)
        out.append(_PAIRS[r])
    return "".join(reversed(out)).lstrip("1") or "1"


def digest(*parts: object) -> bytes:
    """SHA-256 of the parts' text, joined with ":"."""
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()


class IdSource:
    """Deterministic ids: the same seed and sequence of calls give the same ids.

    Counter-based ids for things created in request order; hash-derived ids for things created
    after a network await (callbacks), whose creation order may vary between runs.

    Args:
        seed: Mixed into every id.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._counters: dict[str, int] = {}  # kind -> the next number

    def reset(self, seed: int | None = None) -> None:
        """Restart every counter, with a new seed if given."""
        if seed is not None:
            self.seed = seed
        self._counters.clear()

    def next(self, kind: str, prefix: str, length: int = 40) -> str:
        """The next id of `kind`: `prefix` and `length` base58 characters."""
        return prefix + b58(digest(self.seed, kind, self.counter(kind)))[:length]

    def counter(self, kind: str) -> int:
        """The next integer of the counter `kind` (ordering tie-breaks)."""
        n = self._counters.get(kind, 0)
        self._counters[kind] = n + 1
        return n

    def snapshot(self) -> dict[str, int]:
        """The counters (a persistent store saves them, so ids never repeat after a restart)."""
        return dict(self._counters)

    def restore(self, counters: dict[str, int]) -> None:
        """Continue from saved counters (never going back on one already past them)."""
        for kind, n in counters.items():
            self._counters[kind] = max(n, self._counters.get(kind, 0))

    def derived(self, parent: str, tag: str, prefix: str, length: int = 40) -> str:
        """An id derived from `parent` and `tag` only, not from creation order."""
        return prefix + b58(digest(self.seed, parent, tag))[:length]
