"""Apply `stop` and `max_tokens` to a text, as a model generating token by token would."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .tokenizers import ModelTokenizer
from .tokens import split_tokens

__all__ = ["Shaped", "shape"]


@dataclass(frozen=True)
class Shaped:
    """Text cut by `stop` and `max_tokens`, its tokens, and why it ended."""

    text: str
    tokens: list[str]  # the pieces streaming and logprobs use
    finish_reason: str  # "stop" or "length"
    stop_reason: str | None  # the stop sequence that ended the text, if any
    count: int  # completion tokens: the model's tokenizer's count, or len(tokens)


def shape(
    text: str,
    *,
    stop: Sequence[str] = (),
    max_tokens: int | None = None,
    tokenizer: ModelTokenizer | None = None,
) -> Shaped:
    """Cut `text` before the earliest stop sequence, then to `max_tokens` tokens.

    With `tokenizer` (a hosted model's own), its tokens are cut and counted.

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
    if tokenizer is not None:
        # The hosted model's own tokenizer cuts and counts; the pieces only shape the stream.
        count = tokenizer.count(text[:cut])
        if max_tokens is not None and count > max_tokens:
            kept = tokenizer.truncate(text[:cut], max_tokens)
            return Shaped(kept, split_tokens(kept), "length", None, max_tokens)
        return Shaped(text[:cut], split_tokens(text[:cut]), "stop", stop_reason, count)
    tokens = split_tokens(text[:cut])
    if max_tokens is not None and len(tokens) > max_tokens:
        tokens = tokens[:max_tokens]
        return Shaped("".join(tokens), tokens, "length", None, max_tokens)
    return Shaped(text[:cut], tokens, "stop", stop_reason, len(tokens))
