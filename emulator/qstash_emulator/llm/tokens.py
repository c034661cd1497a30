r"""A small deterministic token counter.

It is not a real BPE tokenizer (the hosted models use theirs where it is installed, see
`tokenizers.py`); it only has to give plausible, stable counts and a way to cut text into
"tokens" for `max_tokens`, streaming deltas and logprobs. A token is up to 8 word characters
or one punctuation character, each carrying up to 8 whitespace characters before it; a longer
run of whitespace gives whitespace tokens of up to 8. So counts grow with the characters, as a
real tokenizer's do: most English words are one token, and a 20 MB "word" is 2.5 million tokens
(a BPE tokenizer's run of one letter gives the same), not one. Joining the tokens gives back
the text exactly.

Chat prompts add OpenAI's documented framing overhead: 4 tokens per message (role and
delimiters) plus 3 tokens priming the reply.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["content_text", "count_message_tokens", "count_tokens", "split_tokens"]

# `(?=(\s{0,8}))\1` is an atomic \s{0,8}: no backtracking over whitespace that cannot lead a
# word, which keeps long whitespace runs linear.
_TOKEN = re.compile(r"(?=(\s{0,8}))\1(?:\w{1,8}|[^\w\s])|\s{1,8}")

_MESSAGE_OVERHEAD = 4
_REPLY_PRIMING = 3
_IMAGE_PART_TOKENS = 85  # what OpenAI charges for a low-detail image


def split_tokens(text: str) -> list[str]:
    """The text's tokens; `"".join(split_tokens(t)) == t`."""
    return [match.group(0) for match in _TOKEN.finditer(text)]


def count_tokens(text: str) -> int:
    """The number of tokens in `text` (see the module docstring for what a token is)."""
    return _TOKEN.subn("", text)[1]  # counted in C, without a string per token


def content_text(content: Any) -> str:
    """The plain text of a message `content`: a string, or the text parts of a parts array."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            str(part.get("text", ""))
            for part in content
            if isinstance(part, Mapping) and part.get("type") == "text"
        ]
        return "\n".join(texts)
    return ""


def _content_tokens(content: Any) -> int:
    tokens = count_tokens(content_text(content))
    if isinstance(content, list):
        tokens += _IMAGE_PART_TOKENS * sum(
            1 for part in content if isinstance(part, Mapping) and part.get("type") == "image_url"
        )
    return tokens


def count_message_tokens(
    messages: Iterable[Mapping[str, Any]], tools: Iterable[Mapping[str, Any]] = ()
) -> int:
    """Prompt tokens of a chat request: contents, names, tool calls, tool definitions, framing."""
    total = _REPLY_PRIMING
    for message in messages:
        total += _MESSAGE_OVERHEAD + _content_tokens(message.get("content"))
        name = message.get("name")
        if isinstance(name, str):
            total += count_tokens(name)
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(function, Mapping):
                total += count_tokens(str(function.get("name", "")))
                total += count_tokens(str(function.get("arguments", "")))
    for tool in tools:
        total += count_tokens(json.dumps(tool, sort_keys=True))
    return total
