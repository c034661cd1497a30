r"""Split rendered completions into OpenAI stream chunks.

The engine returns the chunk dicts; the HTTP layer writes each as `data: <json>\n\n` and ends
the stream with `data: [DONE]`. With `n > 1` the choices' chunks are interleaved round-robin,
one choice per chunk, as OpenAI does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .logprobs import chat_token_logprobs, completion_logprobs
from .tokens import split_tokens

__all__ = ["StreamChoice", "TextStreamChoice", "chat_chunks", "completion_chunks"]


@dataclass(frozen=True)
class _Delta:
    """One piece of a streamed text, with the positions of the tokens that start in it."""

    text: str
    first_token: int
    tokens: list[str]


def _text_deltas(
    text: str, tokens: Sequence[str], chunking: int | Sequence[str] | None
) -> list[_Delta]:
    """Cut `text` (whose tokens are `tokens`) into deltas.

    `chunking` is a number of tokens per delta (default 1) or explicit deltas; explicit
    deltas are cut short where `text` was (by `stop` or `max_tokens`).
    """
    if chunking is None or isinstance(chunking, int):
        size = chunking or 1
        return [
            _Delta("".join(tokens[i : i + size]), i, list(tokens[i : i + size]))
            for i in range(0, len(tokens), size)
        ]
    starts, at = [], 0
    for token in tokens:
        starts.append(at)
        at += len(token)
    deltas, begin = [], 0
    for piece in chunking:
        if begin >= len(text):
            break
        end = min(begin + len(piece), len(text))
        inside = [i for i, s in enumerate(starts) if begin <= s < end]
        first = inside[0] if inside else len(tokens)
        deltas.append(_Delta(text[begin:end], first, [tokens[i] for i in inside]))
        begin = end
    return deltas


@dataclass(frozen=True)
class StreamChoice:
    """What `chat_chunks` needs of one rendered chat choice."""

    index: int
    content: str | None
    tokens: list[str]
    tool_calls: list[dict[str, Any]] | None
    finish_reason: str
    stop_reason: str | None
    chunking: int | tuple[str, ...] | None
    logprobs_top: int | None  # None: logprobs not requested
    logprobs_key: Any
    content_tokens: int | None = None  # the model tokenizer's count, if not len(tokens)


def _interleave(per_choice: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for step in range(max((len(c) for c in per_choice), default=0)):
        out.extend(c[step] for c in per_choice if step < len(c))
    return out


def _chat_choice_deltas(choice: StreamChoice, hosted: bool) -> list[dict[str, Any]]:
    def item(delta: dict[str, Any], logprobs: Any = None) -> dict[str, Any]:
        return {
            "index": choice.index,
            "delta": delta,
            "logprobs": logprobs,
            "finish_reason": None,
            "stop_reason": None,
        }

    first_content = "" if choice.content is not None or not choice.tool_calls else None
    items = [item({"role": "assistant", "content": first_content})]
    for delta in _text_deltas(choice.content or "", choice.tokens, choice.chunking):
        logprobs = None
        if choice.logprobs_top is not None:
            content = chat_token_logprobs(
                delta.tokens, choice.logprobs_top, choice.logprobs_key, delta.first_token
            )
            logprobs = {"content": content, "refusal": None}
        items.append(item({"content": delta.text}, logprobs))
    size = choice.chunking if isinstance(choice.chunking, int) else 1
    for position, call in enumerate(choice.tool_calls or ()):
        function = call["function"]
        header = {
            "index": position,
            "id": call["id"],
            "type": "function",
            "function": {"name": function["name"], "arguments": ""},
        }
        items.append(item({"tool_calls": [header]}))
        arguments = split_tokens(function["arguments"])
        for i in range(0, len(arguments), size):
            piece = "".join(arguments[i : i + size])
            items.append(
                item({"tool_calls": [{"index": position, "function": {"arguments": piece}}]})
            )
    # The Upstash-hosted models' server ends with `content: ""` beside the finish reason, and
    # qstash 2.0.x's stream consumers read `delta.content` on every chunk after the first.
    last = item({"content": ""} if hosted and choice.content is not None else {})
    last["finish_reason"] = choice.finish_reason
    last["stop_reason"] = choice.stop_reason
    items.append(last)
    return items


def _with_usage(
    chunks: list[dict[str, Any]], base: dict[str, Any], usage: dict[str, int], include: bool
) -> list[dict[str, Any]]:
    """`stream_options.include_usage`: `usage: null` everywhere, then a usage-only chunk."""
    if include:
        for chunk in chunks:
            chunk["usage"] = None
        chunks.append({**base, "choices": [], "usage": usage})
    return chunks


def chat_chunks(
    base: dict[str, Any],
    choices: Sequence[StreamChoice],
    usage: dict[str, int],
    include_usage: bool,
    *,
    hosted: bool = False,
) -> list[dict[str, Any]]:
    """The stream chunks of a chat completion.

    `base` holds id, object ("chat.completion.chunk"), created, model, system_fingerprint;
    `hosted`: the Upstash-hosted models' stream shape rather than OpenAI's.
    """
    per_choice = [_chat_choice_deltas(c, hosted) for c in choices]
    chunks = [{**base, "choices": [choice]} for choice in _interleave(per_choice)]
    return _with_usage(chunks, base, usage, include_usage)


@dataclass(frozen=True)
class TextStreamChoice:
    """What `completion_chunks` needs of one legacy completion choice."""

    index: int
    text: str
    tokens: list[str]
    finish_reason: str
    logprobs_top: int | None
    logprobs_key: Any
    chunking: int | tuple[str, ...] | None


def completion_chunks(
    base: dict[str, Any],
    choices: Sequence[TextStreamChoice],
    usage: dict[str, int],
    include_usage: bool,
) -> list[dict[str, Any]]:
    """Legacy completions stream: `text_completion` objects with text deltas."""
    per_choice = []
    for choice in choices:
        items = []
        offset = 0
        for delta in _text_deltas(choice.text, choice.tokens, choice.chunking):
            logprobs = None
            if choice.logprobs_top is not None:
                logprobs = completion_logprobs(
                    delta.tokens,
                    choice.logprobs_top,
                    choice.logprobs_key,
                    offset,
                    delta.first_token,
                )
            items.append(
                {
                    "text": delta.text,
                    "index": choice.index,
                    "logprobs": logprobs,
                    "finish_reason": None,
                }
            )
            offset += len(delta.text)
        items.append(
            {
                "text": "",
                "index": choice.index,
                "logprobs": None,
                "finish_reason": choice.finish_reason,
            }
        )
        per_choice.append(items)
    chunks = [{**base, "choices": [choice]} for choice in _interleave(per_choice)]
    return _with_usage(chunks, base, usage, include_usage)
