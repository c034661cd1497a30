"""Deterministic log probabilities in OpenAI's shapes (chat `logprobs.content`, legacy lists).

Each generated token gets a logprob in [-1, 0) from a hash of (key, position, token), so it is
always the most likely token at its position; the alternatives share the remaining
probability mass, halving at each rank, so every position's probabilities sum below 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .hashing import unit_float

__all__ = ["chat_token_logprobs", "completion_logprobs"]

# Candidate alternatives for top_logprobs (20 of them, the most top_logprobs allows).
_ALTERNATIVES = (
    " the", " a", ",", ".", " and", " to", " of", " in", " is", " it",
    " that", " for", " on", " with", " as", " this", " you", " I", " be", "\n",
    " an",
)  # fmt: skip


def _chosen_logprob(key: Any, position: int, token: str) -> float:
    return -round(0.0001 + 0.9998 * unit_float("logprob", key, position, token), 6)


def _top(key: Any, position: int, token: str, chosen: float, count: int) -> list[tuple[str, float]]:
    if count <= 0:
        return []
    rest = 1.0 - math.exp(chosen)
    start = int(unit_float("alternatives", key, position) * len(_ALTERNATIVES))
    ranked = [(token, chosen)]
    for offset in range(len(_ALTERNATIVES)):
        if len(ranked) == count:
            break
        alternative = _ALTERNATIVES[(start + offset) % len(_ALTERNATIVES)]
        if alternative != token:
            rank = len(ranked)
            ranked.append((alternative, round(math.log(rest * 0.5**rank), 6)))
    return ranked


def chat_token_logprobs(
    tokens: Sequence[str], top_logprobs: int, key: Any, start: int = 0
) -> list[dict[str, Any]]:
    """Entries of `choice.logprobs.content` for `tokens` at positions `start...`."""
    entries = []
    for position, token in enumerate(tokens, start):
        chosen = _chosen_logprob(key, position, token)
        entries.append(
            {
                "token": token,
                "logprob": chosen,
                "bytes": list(token.encode("utf-8")),
                "top_logprobs": [
                    {"token": t, "logprob": lp, "bytes": list(t.encode("utf-8"))}
                    for t, lp in _top(key, position, token, chosen, top_logprobs)
                ],
            }
        )
    return entries


def completion_logprobs(
    tokens: Sequence[str], top: int, key: Any, offset: int = 0, start: int = 0
) -> dict[str, Any]:
    """The legacy completions `logprobs` object (tokens, logprobs, top logprobs, offsets)."""
    token_logprobs: list[float] = []
    tops: list[dict[str, float]] = []
    offsets: list[int] = []
    for position, token in enumerate(tokens, start):
        chosen = _chosen_logprob(key, position, token)
        token_logprobs.append(chosen)
        tops.append(dict(_top(key, position, token, chosen, top)))
        offsets.append(offset)
        offset += len(token)
    return {
        "tokens": list(tokens),
        "token_logprobs": token_logprobs,
        "top_logprobs": tops if top > 0 else None,
        "text_offset": offsets,
    }
