"""Scripted responses: a rule is a match (which requests) plus one answer or a sequence of them.

Rules are tried in the order they were added; the first rule that matches and is not exhausted
answers. A sequence answers its steps in order, one step per request, and then keeps repeating
its last step; `times=N` retires a rule after N answers (so `times=len(sequence)` makes a
sequence run once and then fall through to later rules or to the default answer).
"""

from __future__ import annotations

import json as _json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import LLMErrorSpec

__all__ = [
    "CHAT",
    "COMPLETION",
    "EMBEDDINGS",
    "ENDPOINTS",
    "IMAGE",
    "IMAGE_EDIT",
    "TARGETS",
    "TRANSCRIPTION",
    "TRANSLATION",
    "Answer",
    "Match",
    "MatchContext",
    "Rule",
    "make_rule",
]

CHAT = "chat"
COMPLETION = "completion"
EMBEDDINGS = "embeddings"
TRANSCRIPTION = "transcription"
TRANSLATION = "translation"
IMAGE = "image"
IMAGE_EDIT = "image_edit"
ENDPOINTS = (CHAT, COMPLETION, EMBEDDINGS, TRANSCRIPTION, TRANSLATION, IMAGE, IMAGE_EDIT)
# Rules without `endpoint` script the text-generating endpoints.
_DEFAULT_ENDPOINTS = (CHAT, COMPLETION)
# Endpoints whose answer is text that a rule may script; the others only take errors/latency.
_TEXT_ANSWER_ENDPOINTS = (CHAT, COMPLETION, TRANSCRIPTION, TRANSLATION)

# Which message text `contains`/`regex` look at.
TARGETS = ("last_user", "last", "system", "all")
_FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter")

_ANSWER_KEYS = (
    "content",
    "json",
    "tool_calls",
    "error",
    "latency",
    "chunks",
    "finish_reason",
    "headers",
)


@dataclass(frozen=True)
class MatchContext:
    """What a rule can see of a request, built by the engine for each endpoint."""

    endpoint: str
    model: str
    provider: str | None = None
    role: str | None = None  # role of the last message
    texts: Mapping[str, str] = field(default_factory=dict)  # target -> text
    message_count: int = 1
    turn: int = 1  # how many user messages the conversation has


@dataclass(frozen=True)
class Match:
    """Which requests a rule answers: every field that is set must hold."""

    endpoints: frozenset[str]
    models: frozenset[str] | None = None
    providers: frozenset[str] | None = None
    roles: frozenset[str] | None = None
    contains: str | None = None
    regex: re.Pattern[str] | None = None
    target: str = "last_user"
    message_count: int | None = None
    turn: int | None = None

    def matches(self, ctx: MatchContext) -> bool:
        """Whether the request described by `ctx` meets every condition."""
        if ctx.endpoint not in self.endpoints:
            return False
        if self.models is not None and ctx.model not in self.models:
            return False
        if self.providers is not None and (ctx.provider or "").lower() not in self.providers:
            return False
        if self.roles is not None and ctx.role not in self.roles:
            return False
        if self.message_count is not None and ctx.message_count != self.message_count:
            return False
        if self.turn is not None and ctx.turn != self.turn:
            return False
        text = ctx.texts.get(self.target, "")
        if self.contains is not None and self.contains not in text:
            return False
        return self.regex is None or self.regex.search(text) is not None


@dataclass(frozen=True)
class Answer:
    """One scripted answer. `content` and `tool_calls` both None means "the default text"."""

    content: str | None = None
    tool_calls: tuple[Mapping[str, Any], ...] | None = None
    error: LLMErrorSpec | None = None
    latency: float | None = None
    chunks: int | tuple[str, ...] | None = None  # stream deltas: tokens per delta, or the deltas
    finish_reason: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


class Rule:
    """A scripted rule; `uses` counts the requests it answered."""

    def __init__(
        self,
        match: Match,
        answers: Sequence[Answer],
        *,
        times: int | None = None,
        name: str | None = None,
    ) -> None:
        self.match = match
        self.answers = tuple(answers)
        self.times = times
        self.name = name
        self.uses = 0

    @property
    def exhausted(self) -> bool:
        """True once the rule answered its `times` requests."""
        return self.times is not None and self.uses >= self.times

    def applies(self, ctx: MatchContext) -> bool:
        """Whether the rule answers the request described by `ctx` (and is not exhausted)."""
        return not self.exhausted and self.match.matches(ctx)

    def take(self) -> Answer:
        """The answer for this use (the last step repeats), counting the use."""
        answer = self.answers[min(self.uses, len(self.answers) - 1)]
        self.uses += 1
        return answer

    def __repr__(self) -> str:
        label = self.name or ",".join(sorted(self.match.endpoints))
        return f"<Rule {label!r} uses={self.uses} times={self.times}>"


def _names(value: str | Sequence[str] | None, what: str) -> frozenset[str] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value)
    if not items or not all(isinstance(v, str) for v in items):
        raise ValueError(f"{what} must be a string or a list of strings, got {value!r}")
    return frozenset(items)


def _tool_call(raw: Any) -> Mapping[str, Any]:
    """Accept `{"name", "arguments"}` or OpenAI's `{"type", "function": {...}}` shape."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"a tool call must be a mapping, got {raw!r}")
    function = raw.get("function", raw)
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise ValueError(f"a tool call needs a function name, got {raw!r}")
    arguments = function.get("arguments", {})
    if not isinstance(arguments, str):
        arguments = _json.dumps(arguments)
    call_id = raw.get("id")
    if call_id is not None and not isinstance(call_id, str):
        raise ValueError(f"a tool call id must be a string, got {call_id!r}")
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": function["name"], "arguments": arguments},
    }


def _error(value: Any) -> LLMErrorSpec:
    if isinstance(value, LLMErrorSpec):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return LLMErrorSpec(status=value)
    if isinstance(value, Mapping):
        unknown = set(value) - {"status", "message", "type", "code", "param", "body", "headers"}
        if unknown:
            raise ValueError(f"unknown error keys: {sorted(unknown)}")
        return LLMErrorSpec(**value)
    raise ValueError(f"error must be an LLMErrorSpec, a status or a mapping, got {value!r}")


def _make_answer(
    *,
    content: str | None = None,
    json: Any = None,
    tool_calls: Sequence[Mapping[str, Any]] | None = None,
    error: LLMErrorSpec | int | Mapping[str, Any] | None = None,
    latency: float | None = None,
    chunks: int | Sequence[str] | None = None,
    finish_reason: str | None = None,
    headers: Mapping[str, Any] | None = None,
) -> Answer:
    if content is not None and not isinstance(content, str):
        raise ValueError(f"content must be a string, got {content!r}")
    if json is not None:
        if content is not None:
            raise ValueError("give content or json, not both")
        content = _json.dumps(json)
    if error is not None and (content is not None or tool_calls is not None):
        raise ValueError("an error answer cannot also have content or tool calls")
    calls = None
    if tool_calls is not None:
        if isinstance(tool_calls, (str, Mapping)) or not tool_calls:
            raise ValueError("tool_calls must be a non-empty list")
        calls = tuple(_tool_call(c) for c in tool_calls)
    if latency is not None and (
        isinstance(latency, bool) or not isinstance(latency, (int, float)) or latency < 0
    ):
        raise ValueError(f"latency must be a number of seconds >= 0, got {latency!r}")
    deltas: int | tuple[str, ...] | None = None
    if isinstance(chunks, int) and not isinstance(chunks, bool):
        if chunks < 1:
            raise ValueError("chunks must be >= 1 tokens per delta")
        deltas = chunks
    elif chunks is not None:
        if not isinstance(chunks, (list, tuple)) or not chunks:
            raise ValueError("chunks must be an int or a non-empty list of strings")
        deltas = tuple(str(c) for c in chunks if isinstance(c, str))
        if len(deltas) != len(chunks):
            raise ValueError("chunks must be an int or a non-empty list of strings")
        if content is None and calls is None:
            content = "".join(deltas)
        elif content != "".join(deltas):
            raise ValueError("the chunks must join to the content")
    if finish_reason is not None and finish_reason not in _FINISH_REASONS:
        raise ValueError(f"finish_reason must be one of {_FINISH_REASONS}")
    return Answer(
        content=content,
        tool_calls=calls,
        error=_error(error) if error is not None else None,
        latency=float(latency) if latency is not None else None,
        chunks=deltas,
        finish_reason=finish_reason,
        headers={str(k): str(v) for k, v in (headers or {}).items()},
    )


def _step(item: Any, defaults: Mapping[str, Any]) -> Answer:
    """A sequence step: a string (content), an error spec, None (default text) or a mapping."""
    if item is None:
        return _make_answer(**defaults)
    if isinstance(item, str):
        return _make_answer(**{**defaults, "content": item})
    if isinstance(item, LLMErrorSpec):
        return _make_answer(**{**defaults, "error": item})
    if isinstance(item, Mapping):
        unknown = set(item) - set(_ANSWER_KEYS)
        if unknown:
            raise ValueError(f"unknown answer keys in sequence step: {sorted(unknown)}")
        return _make_answer(**{**defaults, **item})
    raise ValueError(f"a sequence step must be a string, a mapping or None, got {item!r}")


def make_rule(
    *,
    model: str | Sequence[str] | None = None,
    provider: str | Sequence[str] | None = None,
    role: str | Sequence[str] | None = None,
    contains: str | None = None,
    regex: str | re.Pattern[str] | None = None,
    target: str = "last_user",
    message_count: int | None = None,
    turn: int | None = None,
    endpoint: str | Sequence[str] | None = None,
    content: str | None = None,
    json: Any = None,
    tool_calls: Sequence[Mapping[str, Any]] | None = None,
    sequence: Sequence[Any] | None = None,
    error: LLMErrorSpec | int | Mapping[str, Any] | None = None,
    latency: float | None = None,
    chunks: int | Sequence[str] | None = None,
    finish_reason: str | None = None,
    headers: Mapping[str, Any] | None = None,
    times: int | None = None,
    name: str | None = None,
) -> Rule:
    """Build a rule; raises ValueError on an inconsistent or malformed spec."""
    endpoints = _names(endpoint, "endpoint") or frozenset(_DEFAULT_ENDPOINTS)
    unknown = endpoints - set(ENDPOINTS)
    if unknown:
        raise ValueError(f"unknown endpoint(s) {sorted(unknown)}; expected some of {ENDPOINTS}")
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    if contains is not None and not isinstance(contains, str):
        raise ValueError(f"contains must be a string, got {contains!r}")
    for label, number in (("message_count", message_count), ("turn", turn), ("times", times)):
        if number is not None and (
            isinstance(number, bool) or not isinstance(number, int) or number < 1
        ):
            raise ValueError(f"{label} must be an int >= 1, got {number!r}")
    providers = _names(provider, "provider")
    match = Match(
        endpoints=endpoints,
        models=_names(model, "model"),
        providers=frozenset(p.lower() for p in providers) if providers is not None else None,
        roles=_names(role, "role"),
        contains=contains,
        regex=re.compile(regex) if isinstance(regex, str) else regex,
        target=target,
        message_count=message_count,
        turn=turn,
    )
    defaults: dict[str, Any] = {
        "latency": latency,
        "chunks": chunks,
        "finish_reason": finish_reason,
        "headers": headers,
    }
    if sequence is not None:
        if any(v is not None for v in (content, json, tool_calls, error)):
            raise ValueError("a sequence rule takes its answers from the sequence only")
        if isinstance(sequence, (str, Mapping)) or not sequence:
            raise ValueError("sequence must be a non-empty list")
        answers = [_step(item, defaults) for item in sequence]
    else:
        answers = [
            _make_answer(content=content, json=json, tool_calls=tool_calls, error=error, **defaults)
        ]
    if not endpoints <= set(_TEXT_ANSWER_ENDPOINTS) and any(
        a.content is not None or a.tool_calls is not None for a in answers
    ):
        raise ValueError(
            f"only {_TEXT_ANSWER_ENDPOINTS} take scripted content; other endpoints take "
            "error/latency answers"
        )
    return Rule(match, answers, times=times, name=name)
