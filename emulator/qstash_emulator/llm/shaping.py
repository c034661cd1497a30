"""Apply `stop` and `max_tokens` to a text, as a model generating token by token would."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .tokens import split_tokens

__all__ = ["Shaped", "shape"]


@dataclass(frozen=True)
class Shaped:
    """Text cut by `stop` and `max_tokens`, its tokens, and why it ended."""

    text: str
    tokens: list[str]
    finish_reason: str  # "stop" or "length"
    stop_reason: str | None  # the stop sequence that ended the text, if any


def shape(text: str, *, stop: Sequence[str] = (), max_tokens: int | None = None) -> Shaped:
    """Cut `text` before the earliest stop sequence, then to `max_tokens` tokens.

    Whichever comes first wins: a stop sequence found after `max_tokens` tokens is never
    reached, so the result ends with `finish_reason="length"`. Of two stop sequences found
    at the same place, the one listed first wins.
    """
    stop_reason: str | None = None
    cut = len(text)
    for sequence in stop:
        at = text.find(sequence)
        if at != -1 and at < cut:
            cut, stop_reason = at, sequence
    tokens = split_tokens(text[:cut])
    if max_tokens is not None and len(tokens) > max_tokens:
        tokens = tokens[:max_tokens]
        return Shaped("".join(tokens), tokens, "length", None)
    return Shaped(text[:cut], tokens, "stop", stop_reason)
