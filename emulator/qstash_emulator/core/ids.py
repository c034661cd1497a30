"""Deterministic ids: the same seed and the same sequence of calls give the same ids."""

from __future__ import annotations

import hashlib

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(_B58[r])
    return "".join(reversed(out)) or "1"


def digest(*parts: object) -> bytes:
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()


class IdSource:
    """Counter-based ids for things created in request order; hash-derived ids for things
    created after a network await (callbacks), whose creation order may vary between runs."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._counters: dict[str, int] = {}  # kind -> the next number

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.seed = seed
        self._counters.clear()

    def next(self, kind: str, prefix: str, length: int = 40) -> str:
        return prefix + b58(digest(self.seed, kind, self.counter(kind)))[:length]

    def counter(self, kind: str) -> int:
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
        return prefix + b58(digest(self.seed, parent, tag))[:length]
