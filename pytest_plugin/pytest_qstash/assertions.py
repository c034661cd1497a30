"""Filters over deliveries and LLM calls, and failure messages that show what happened instead."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .records import DeliveredMessage, iso

__all__ = [
    "LLMQuery",
    "Pending",
    "Query",
    "Situation",
    "count_text",
    "failure",
    "llm_failure",
    "url_of",
]

_UNSET: Any = object()  # "not given" for filters where None is a meaningful value
_SHOWN = 20  # deliveries listed in a failure message (the most recent)


def _short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _as_text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def url_of(value: Any) -> str | re.Pattern[str] | None:
    """A URL filter from a string, a compiled regex, or anything with a `.url` (a capture)."""
    if value is None or isinstance(value, (str, re.Pattern)):
        return value
    found = getattr(value, "url", None)
    if isinstance(found, str):
        return found
    raise TypeError(f"url must be a string, a re.Pattern or a capture, not {value!r}")


@dataclass
class Query:
    """What a delivery must look like; every given criterion must hold."""

    url: str | re.Pattern[str] | None = None
    message_id: str | None = None
    schedule_id: str | None = None
    queue: str | None = None
    url_group: str | None = None
    kind: str | None = None
    user: str | None = None
    method: str | None = None
    header: str | tuple[str, str] | None = None
    headers: Mapping[str, str] | None = None
    body: str | bytes | None = None
    json: Any = _UNSET
    contains: str | bytes | None = None
    status: int | None = _UNSET
    retried: int | None = None
    where: Callable[[DeliveredMessage], bool] | None = None

    def mismatches(self, d: DeliveredMessage) -> list[str]:
        """Why `d` does not match (empty: it matches)."""
        out: list[str] = []
        if self.url is not None:
            ok = (
                self.url.search(d.url) is not None
                if isinstance(self.url, re.Pattern)
                else d.url == self.url
            )
            if not ok:
                out.append(f"url {d.url!r}")
        for name, want, got in (
            ("message_id", self.message_id, d.message_id),
            ("schedule_id", self.schedule_id, d.schedule_id),
            ("queue", self.queue, d.queue_name),
            ("url_group", self.url_group, d.url_group),
            ("kind", self.kind, d.kind),
            ("user", self.user, d.user),
            ("retried", self.retried, d.retried),
        ):
            if want is not None and got != want:
                out.append(f"{name} {got!r}")
        if self.method is not None and d.method.upper() != self.method.upper():
            out.append(f"method {d.method!r}")
        if self.status is not _UNSET and d.status != self.status:
            out.append(f"status {d.status!r}")
        wanted: dict[str, str | None] = {}
        if isinstance(self.header, tuple):
            wanted[self.header[0]] = self.header[1]
        elif self.header is not None:
            wanted[self.header] = None  # present, any value
        wanted.update(self.headers or {})
        for name, value in wanted.items():
            got = d.header(name)
            if got is None:
                out.append(f"no header {name!r}")
            elif value is not None and got != value:
                out.append(f"header {name!r} is {got!r}")
        if self.body is not None and d.text != _as_text(self.body):
            out.append(f"body {_short(d.text)!r}")
        if self.json is not _UNSET:
            try:
                parsed = d.json()
            except ValueError:
                out.append(f"body is not JSON: {_short(d.text)!r}")
            else:
                if parsed != self.json:
                    out.append(f"json {_short(parsed)}")
        if self.contains is not None and _as_text(self.contains) not in d.text:
            out.append(f"body {_short(d.text)!r} lacks {_as_text(self.contains)!r}")
        if self.where is not None and not self.where(d):
            out.append("where(...) is false")
        return out

    def matches(self, d: DeliveredMessage) -> bool:
        """Whether `d` meets every filter."""
        return not self.mismatches(d)

    def describe(self) -> list[str]:
        """The filters that are set, one "name = value" line each (for failure messages)."""
        lines = []
        for name, value in self.__dict__.items():
            if value is None or value is _UNSET:
                continue
            if isinstance(value, re.Pattern):
                value = f"re.compile({value.pattern!r})"
            elif callable(value):
                value = getattr(value, "__name__", "<callable>")
            elif isinstance(value, bytes):
                value = _as_text(value)
            lines.append(
                f"{name} = {_short(value)!r}"
                if isinstance(value, str)
                else f"{name} = {_short(value)}"
            )
        return lines or ["(any delivery)"]


@dataclass(frozen=True)
class Pending:
    """A message not delivered yet (for the hint in failure messages)."""

    message_id: str
    url: str
    due: float
    state: str
    retried: int


@dataclass
class Situation:
    """What the emulator knew at the sync point an assertion ran at."""

    deliveries: list[DeliveredMessage]
    pending: list[Pending] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    now: float = 0.0
    start: float = 0.0
    auto_advance: bool = False
    virtual: bool = True


def count_text(
    times: int | None, noun: str = "delivery", plural: str = "deliveries", least: bool = False
) -> str:
    """Failure-message text such as "exactly 2 deliveries" or "at least one delivery"."""
    if times is None:
        return f"at least one {noun}"
    return f"{'at least' if least else 'exactly'} {times} {noun if times == 1 else plural}"


def failure(
    title: str, query: Query, found: Sequence[DeliveredMessage], situation: Situation
) -> str:
    """A pytest-style explanation: what was expected, then what was delivered instead."""
    lines = [title, "  matching:"]
    lines += [f"    {line}" for line in query.describe()]
    start = situation.start
    if found:
        lines.append(f"  matched {len(found)}:")
        lines += [f"    {d.describe(start)}" for d in found[-_SHOWN:]]
    others = [d for d in situation.deliveries if not any(d is f for f in found)]
    if not situation.deliveries:
        lines.append("  nothing was delivered in this test.")
    elif others:
        lines.append(f"  delivered instead ({len(others)}):")
        if len(others) > _SHOWN:
            lines.append(f"    ... {len(others) - _SHOWN} earlier ones not shown")
        for d in others[-_SHOWN:]:
            lines.append(f"    {d.describe(start)}")
            lines.append(f"        differs: {'; '.join(query.mismatches(d))}")
    relevant = [
        p
        for p in situation.pending
        if query.url is None
        or query.url == p.url
        or (isinstance(query.url, re.Pattern) and query.url.search(p.url))
    ]
    if relevant:
        lines.append(f"  not delivered yet ({len(relevant)}):")
        for p in relevant[:_SHOWN]:
            lines.append(
                f"    {p.message_id} -> {p.url}  due t=+{p.due - start:g}s "
                f"({iso(p.due)}), state {p.state}, retried={p.retried}"
            )
        if situation.virtual and not situation.auto_advance:
            lines.append(
                "    (virtual time moves only when the test moves it: advance(...), "
                "run_until_idle() or auto_advance)"
            )
    lines.append(f"  emulator time: t=+{situation.now - start:g}s ({iso(situation.now)})")
    if situation.errors:
        lines.append("  errors inside the emulator during this test:")
        lines += [f"    {e}" for e in situation.errors]
    return "\n".join(lines)


# -- LLM calls ------------------------------------------------------------------------------


def _llm_text(call: Any) -> str:
    """The prompt text of a recorded LLM call (messages, prompt or input), for `contains`."""
    body = getattr(call, "body", None)
    if isinstance(body, Mapping):
        parts: list[str] = []
        for message in body.get("messages") or []:
            content = message.get("content") if isinstance(message, Mapping) else None
            if isinstance(content, str):
                parts.append(content)
            elif content is not None:
                parts.append(json.dumps(content))
        for key in ("prompt", "input"):
            value = body.get(key)
            if value is not None:
                parts.append(value if isinstance(value, str) else json.dumps(value))
        if parts:
            return "\n".join(parts)
    return json.dumps(body, default=str)


@dataclass
class LLMQuery:
    """Filters over the LLM engine's recorded calls (what `assert_llm_called` takes)."""

    model: str | None = None
    contains: str | None = None
    endpoint: str | None = None
    provider: str | None = None
    where: Callable[[Any], bool] | None = None

    def mismatches(self, call: Any) -> list[str]:
        """Why `call` does not match (empty: it matches)."""
        out = []
        body = getattr(call, "body", None)
        model = body.get("model") if isinstance(body, Mapping) else None
        if self.model is not None and model != self.model:
            out.append(f"model {model!r}")
        if self.endpoint is not None and getattr(call, "endpoint", None) != self.endpoint:
            out.append(f"endpoint {getattr(call, 'endpoint', None)!r}")
        if self.provider is not None and getattr(call, "provider", None) != self.provider:
            out.append(f"provider {getattr(call, 'provider', None)!r}")
        if self.contains is not None and self.contains not in _llm_text(call):
            out.append(f"prompt lacks {self.contains!r}")
        if self.where is not None and not self.where(call):
            out.append("where(...) is false")
        return out

    def describe(self) -> list[str]:
        """The filters that are set, one "name = value" line each (for failure messages)."""
        lines = [
            f"{name} = {value!r}"
            for name, value in self.__dict__.items()
            if value is not None and not callable(value)
        ]
        if self.where is not None:
            lines.append(f"where = {getattr(self.where, '__name__', '<callable>')}")
        return lines or ["(any call)"]


def _describe_llm_call(call: Any) -> str:
    body = getattr(call, "body", None)
    model = body.get("model") if isinstance(body, Mapping) else None
    outcome = getattr(call, "outcome", None)
    status = getattr(outcome, "status", "?")
    return (
        f"{getattr(call, 'endpoint', '?')} model={model!r} -> {status}  "
        f"prompt={_short(_llm_text(call), 80)!r}"
    )


def llm_failure(title: str, query: LLMQuery, found: Sequence[Any], calls: Sequence[Any]) -> str:
    """A failure message: the filters, the calls that matched and the ones that did not."""
    lines = [title, "  matching:"]
    lines += [f"    {line}" for line in query.describe()]
    if found:
        lines.append(f"  matched {len(found)}:")
        lines += [f"    {_describe_llm_call(c)}" for c in found[-_SHOWN:]]
    others = [c for c in calls if not any(c is f for f in found)]
    if not calls:
        lines.append("  no LLM call was made in this test.")
    elif others:
        lines.append(f"  calls instead ({len(others)}):")
        for c in others[-_SHOWN:]:
            lines.append(f"    {_describe_llm_call(c)}")
            lines.append(f"        differs: {'; '.join(query.mismatches(c))}")
    return "\n".join(lines)
