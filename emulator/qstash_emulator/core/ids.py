"""Deterministic ids: the same seed and the same sequence of calls give the same ids."""

from __future__ import annotations

import hashlib
import itertools
from collections import defaultdict
from collections.abc import Iterator

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


# Two base-58 digits at a time: half the big-integer divisions (ids are made per message).
_PAIRS = [a + b for a in _B58 for b in _B58]


def b58(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58 * 58)
        out.append(_PAIRS[r])
    return "".join(reversed(out)).lstrip("1") or "1"


def digest(*parts: object) -> bytes:
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()


class IdSource:
    """Counter-based ids for things created in request order; hash-derived ids for things
    created after a network await (callbacks), whose creation order may vary between runs."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._counters: dict[str, Iterator[int]] = defaultdict(itertools.count)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.seed = seed
        self._counters.clear()

    def next(self, kind: str, prefix: str, length: int = 40) -> str:
        n = next(self._counters[kind])
        return prefix + b58(digest(self.seed, kind, n))[:length]

    def counter(self, kind: str) -> int:
        return next(self._counters[kind])

    def derived(self, parent: str, tag: str, prefix: str, length: int = 40) -> str:
        return prefix + b58(digest(self.seed, parent, tag))[:length]
