"""Stable hashing helpers: every "random" choice of the LLM engine derives from these.

Python's `hash()` is salted per process, so it would break "same request, same answer across
processes". Everything here goes through SHA-256 over a canonical JSON encoding instead.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["canonical", "hex_id", "int_seed", "unit_float"]


def canonical(value: Any) -> bytes:
    """Canonical bytes of a JSON-like value (sorted keys, no spaces); other objects via `repr`."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr
    ).encode("utf-8")


def _digest(*parts: Any) -> bytes:
    """SHA-256 digest of the parts, taken together."""
    return hashlib.sha256(canonical(list(parts))).digest()


def hex_id(*parts: Any, length: int = 32) -> str:
    """Deterministic lowercase hex string of `length` characters (at most 64)."""
    return _digest(*parts).hex()[:length]


def int_seed(*parts: Any) -> int:
    """Deterministic 64-bit integer, e.g. to seed Faker."""
    return int.from_bytes(_digest(*parts)[:8], "big")


def unit_float(*parts: Any) -> float:
    """Deterministic float in [0, 1)."""
    return int.from_bytes(_digest(*parts)[:7], "big") / float(1 << 56)
