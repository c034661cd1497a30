"""Reads the Upstash-* headers of a publish (or enqueue, batch entry, schedule) into a spec.

Every check happens here, before the engine touches state, so a bad request changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..core.errors import bad_request
from ..core.quotas import Quota
from ..core.state import NO_REDACTION, CallbackConfig, FlowControlSpec, Redaction
from . import header_names as h
from .durations import DurationError, parse_duration, parse_not_before
from .forwarding import connection_tokens, drop_reserved
from .header_rules import check_header_fields
from .plain_int import plain_int
from .retry_expressions import RetryDelay, RetryDelayError, compile_retry_delay
from .url_rules import url_problem

__all__ = ["MessageSpec", "check_url", "is_url", "parse_message_headers"]

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_DEFAULT_RETRIES = 3
# Headers that describe the publish request itself and are never forwarded.
_NOT_FORWARDED = {
    "authorization",
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "accept-encoding",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
}
_FORWARD = "upstash-forward-"
_CALLBACK_FORWARD = "upstash-callback-forward-"
_FAILURE_FORWARD = "upstash-failure-callback-forward-"
_REDACT_HEADER = re.compile(r"^headers?\[([^\]]+)\]$", re.IGNORECASE)


@dataclass
class MessageSpec:
    """What a publish asks for, parsed from its headers and checked; the engine's input.

    Times (`delay`, `timeout`) are seconds and `not_before` is seconds since the Unix epoch.
    `headers` are those that reach the destination; `given` names the headers the request
    set, so a DLQ retry overrides only those.
    """

    method: str = "POST"
    headers: h.Headers = field(default_factory=dict)
    retries: int = _DEFAULT_RETRIES
    retry_delay: RetryDelay | None = None
    timeout: float | None = None
    delay: float = 0.0
    not_before: float | None = None
    labels: list[str] = field(default_factory=list)
    dedup_id: str | None = None
    content_dedup: bool = False
    callback: CallbackConfig | None = None
    failure_callback: CallbackConfig | None = None
    redact: Redaction = NO_REDACTION
    flow_control: FlowControlSpec | None = None
    cron: str | None = None
    schedule_id: str | None = None
    queue_name: str | None = None
    given: frozenset[str] = frozenset()  # lower-case header names the request set
    raw: tuple[tuple[str, str], ...] = ()  # the request's headers as sent (workflow runs read them)


def is_url(text: str) -> bool:
    """Whether `text` is an absolute http(s) URL a delivery can be sent to (see url_rules)."""
    return url_problem(text) is None


def check_url(text: str, what: str) -> str:
    """`text`, or a 400 saying why it cannot be the `what` URL."""
    problem = url_problem(text)
    if problem is not None:
        raise bad_request(f"invalid {what} url: {text!r}: {problem}")
    return text


def _int(value: str, name: str, *, minimum: int = 0) -> int:
    try:
        n = plain_int(value)
    except ValueError:
        raise bad_request(f"invalid {name} header: {value!r} is not an integer") from None
    if n < minimum:
        raise bad_request(f"invalid {name} header: {value!r} must be at least {minimum}")
    return n


def _duration(value: str, name: str) -> float:
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise bad_request(f"invalid {name} header: {exc}") from None


def _retry_delay(value: str, name: str) -> RetryDelay:
    try:
        return compile_retry_delay(value)
    except RetryDelayError as exc:
        raise bad_request(f"invalid {name} header: {exc}") from None


def _retries(value: str, name: str, quota: Quota) -> int:
    n = _int(value, name)
    if n > quota.max_retries:
        raise bad_request(
            f"invalid {name} header: {n} retries exceed the {quota.name} plan's limit of "
            f"{quota.max_retries}"
        )
    return n


def _timeout(value: str, name: str, quota: Quota) -> float:
    seconds = _duration(value, name)
    if seconds <= 0:
        raise bad_request(f"invalid {name} header: timeout must be positive")
    if seconds > quota.max_timeout:
        raise bad_request(
            f"invalid {name} header: timeout exceeds the {quota.name} plan's limit of "
            f"{int(quota.max_timeout)}s"
        )
    return seconds


def _delay(value: str, name: str, quota: Quota) -> float:
    seconds = _duration(value, name)
    if seconds > quota.max_delay:
        raise bad_request(
            f"invalid {name} header: delay exceeds the {quota.name} plan's limit of "
            f"{int(quota.max_delay)}s"
        )
    return seconds


def _parse_flow_control(key: str | None, value: str | None) -> FlowControlSpec | None:
    if key is None and value is None:
        return None
    if not key:
        raise bad_request("Upstash-Flow-Control-Key is required with Upstash-Flow-Control-Value")
    fc = FlowControlSpec(key=key)
    for part in (value or "").split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, raw = part.partition("=")
        name, raw = name.strip().lower(), raw.strip()
        if not sep or not raw:
            raise bad_request(f"invalid Upstash-Flow-Control-Value: {value!r}")
        if name == "parallelism":
            fc.parallelism = _int(raw, "Upstash-Flow-Control-Value parallelism", minimum=1)
        elif name == "rate":
            fc.rate = _int(raw, "Upstash-Flow-Control-Value rate", minimum=1)
        elif name == "period":
            fc.period = _duration(raw, "Upstash-Flow-Control-Value period")
            if fc.period <= 0:
                raise bad_request("invalid Upstash-Flow-Control-Value: period must be positive")
        else:
            raise bad_request(f"invalid Upstash-Flow-Control-Value: unknown field {name!r}")
    if fc.parallelism is None and fc.rate is None:
        raise bad_request(
            "invalid Upstash-Flow-Control-Value: give parallelism, rate or both "
            "(e.g. 'parallelism=5, rate=10, period=1m')"
        )
    return fc


def _parse_redact(value: str) -> Redaction:
    body = all_headers = False
    names: set[str] = set()
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        match = _REDACT_HEADER.match(part)
        if part.lower() == "body":
            body = True
        elif part.lower() in ("header", "headers"):
            all_headers = True
        elif match:
            names.add(h.canonical(match.group(1).strip()))
        else:
            raise bad_request(
                f"invalid Upstash-Redact-Fields: {part!r} (use body, headers or header[Name])"
            )
    return Redaction(body, all_headers, frozenset(names))


def _callback(
    pairs: list[tuple[str, str]], lower: dict[str, str], prefix: str, name: str, quota: Quota
) -> CallbackConfig | None:
    # prefix is "Upstash-Callback" or "Upstash-Failure-Callback"
    url = lower.get(prefix.lower())
    if url is None:
        return None
    cfg = CallbackConfig(url=check_url(url.strip(), name))
    p = prefix.lower()
    if (m := lower.get(p + "-method")) is not None:
        cfg.method = _method(m, prefix + "-Method")
    if (t := lower.get(p + "-timeout")) is not None:
        cfg.timeout = _timeout(t, prefix + "-Timeout", quota)
    if (r := lower.get(p + "-retries")) is not None:
        cfg.retries = _retries(r, prefix + "-Retries", quota)
    if (d := lower.get(p + "-retry-delay")) is not None:
        cfg.retry_delay = _retry_delay(d, prefix + "-Retry-Delay")
    if (d := lower.get(p + "-delay")) is not None:
        cfg.delay = _delay(d, prefix + "-Delay", quota)
    forward = p + "-forward-"
    forwarded = [
        (key[len(forward) :], value)
        for key, value in pairs
        if key.lower().startswith(forward) and len(key) > len(forward)
    ]
    for key, value in drop_reserved(forwarded):
        h.add(cfg.headers, key, value)
    return cfg


def _method(value: str, name: str) -> str:
    method = value.strip().upper()
    for known in _METHODS:
        if method == known:
            return known  # the shared constant: a held message keeps no string of its own
    raise bad_request(f"invalid {name} header: {value!r}, want one of {', '.join(_METHODS)}")


def parse_message_headers(
    pairs: Iterable[tuple[str, str]], quota: Quota, *, forward_query: bool = False
) -> MessageSpec:
    """Parse a publish's headers. `pairs` keeps repeated headers; names are case-insensitive."""
    pairs = list(pairs)
    check_header_fields(pairs)
    lower: dict[str, str] = {}
    for key, value in pairs:
        lower.setdefault(key.lower(), value)
    spec = MessageSpec(given=frozenset(lower), raw=tuple(pairs))
    if (m := lower.get("upstash-method")) is not None:
        spec.method = _method(m, "Upstash-Method")
    forward_all = forward_query or lower.get("upstash-header-forward", "").lower() == "true"
    forwarded: list[tuple[str, str]] = []
    for key, value in pairs:
        k = key.lower()
        if k.startswith(_FORWARD) and len(k) > len(_FORWARD):
            forwarded.append((key[len(_FORWARD) :], value))
        elif k == "content-type" or (
            forward_all and not k.startswith("upstash-") and k not in _NOT_FORWARDED
        ):
            forwarded.append((key, value))
    # Forwarding everything: what the publish request's own Connection names is hop-by-hop too.
    own = (
        connection_tokens(v for k, v in pairs if k.lower() == "connection")
        if forward_all
        else frozenset()
    )
    for key, value in drop_reserved(forwarded, own):
        h.add(spec.headers, key, value)
    if (r := lower.get("upstash-retries")) is not None:
        spec.retries = _retries(r, "Upstash-Retries", quota)
    elif quota.max_retries < _DEFAULT_RETRIES:
        spec.retries = quota.max_retries
    if (d := lower.get("upstash-retry-delay")) is not None:
        spec.retry_delay = _retry_delay(d, "Upstash-Retry-Delay")
    if (t := lower.get("upstash-timeout")) is not None:
        spec.timeout = _timeout(t, "Upstash-Timeout", quota)
    if (d := lower.get("upstash-delay")) is not None:
        spec.delay = _delay(d, "Upstash-Delay", quota)
    if (nb := lower.get("upstash-not-before")) is not None:
        try:
            spec.not_before = float(parse_not_before(nb))
        except DurationError as exc:
            raise bad_request(f"invalid Upstash-Not-Before header: {exc}") from None
    if (label := lower.get("upstash-label")) is not None:
        spec.labels = [part.strip() for part in label.split(",") if part.strip()]
    if (dedup := lower.get("upstash-deduplication-id")) is not None:
        if not dedup.strip():
            raise bad_request("invalid Upstash-Deduplication-Id header: empty")
        spec.dedup_id = dedup.strip()
    if (cbd := lower.get("upstash-content-based-deduplication")) is not None:
        if cbd.strip().lower() not in ("true", "false"):
            raise bad_request(
                f"invalid Upstash-Content-Based-Deduplication header: {cbd!r}, want true or false"
            )
        spec.content_dedup = cbd.strip().lower() == "true"
    spec.callback = _callback(pairs, lower, "Upstash-Callback", "callback", quota)
    spec.failure_callback = _callback(
        pairs, lower, "Upstash-Failure-Callback", "failure callback", quota
    )
    if (redact := lower.get("upstash-redact-fields")) is not None:
        spec.redact = _parse_redact(redact)
    spec.flow_control = _parse_flow_control(
        lower.get("upstash-flow-control-key"), lower.get("upstash-flow-control-value")
    )
    if (cron := lower.get("upstash-cron")) is not None:
        spec.cron = cron.strip()
    if (sid := lower.get("upstash-schedule-id")) is not None:
        spec.schedule_id = sid.strip()
    if (queue := lower.get("upstash-queue-name")) is not None:
        spec.queue_name = queue.strip()
    return spec
