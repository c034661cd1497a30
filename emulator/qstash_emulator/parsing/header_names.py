"""Header maps as QStash shows them: canonical names, each with a list of values."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping

__all__ = ["Headers", "add", "canonical", "flat", "from_pairs", "redacted"]

Headers = dict[str, list[str]]


@functools.lru_cache(maxsize=4096)  # header names repeat on every request
def canonical(name: str) -> str:
    """Go's canonical MIME header form ("content-type" -> "Content-Type"), as QStash returns."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def add(headers: Headers, name: str, value: str) -> None:
    """Append a value under the canonical form of `name`."""
    headers.setdefault(canonical(name), []).append(value)


def from_pairs(pairs: Iterable[tuple[str, str]]) -> Headers:
    """Headers from (name, value) pairs; repeated names keep every value."""
    out: Headers = {}
    for name, value in pairs:
        add(out, name, value)
    return out


def flat(headers: Mapping[str, list[str]]) -> list[tuple[str, str]]:
    """(name, value) pairs, one per value, in order."""
    return [(name, value) for name, values in headers.items() for value in values]


def redacted(value: str) -> str:
    """The text QStash shows for a redacted value: "REDACTED:" and its SHA-256."""
    return "REDACTED:" + hashlib.sha256(value.encode()).hexdigest()
