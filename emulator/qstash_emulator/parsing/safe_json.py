"""JSON from a request, read without surprises: nesting is bounded.

A body nested 100,000 deep must be a 400, not a RecursionError anywhere that walks it later.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_DEPTH", "JsonError", "depth_exceeds", "loads"]

# Far beyond any QStash or OpenAI body (tool schemas nest a few dozen levels at most).
MAX_DEPTH = 128


class JsonError(ValueError):
    """The body is not JSON the emulator reads (a ValueError, as json.loads raises).

    `too_deep` tells a body nested past MAX_DEPTH from one that is not JSON at all.
    """

    def __init__(self, message: str, *, too_deep: bool = False) -> None:
        super().__init__(message)
        self.too_deep = too_deep


def loads(raw: bytes | str) -> Any:
    """`json.loads`, raising JsonError (a ValueError) also for nesting past MAX_DEPTH."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise JsonError(f"JSON nested more than {MAX_DEPTH} levels deep", too_deep=True) from None
    except ValueError as exc:
        raise JsonError(str(exc)) from None
    if depth_exceeds(value, MAX_DEPTH):
        raise JsonError(f"JSON nested more than {MAX_DEPTH} levels deep", too_deep=True)
    return value


def depth_exceeds(value: Any, limit: int) -> bool:
    """True when lists/objects nest deeper than `limit` (iterative: no recursion of its own)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False
