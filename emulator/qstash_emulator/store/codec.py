"""JSON shapes of the persisted objects, and back. Pure functions: no I/O, no store state."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from ..core.state import (
    NO_REDACTION,
    CallbackConfig,
    FlowControlSpec,
    Message,
    Redaction,
    Response,
)
from ..core.users import User
from ..parsing.publish_headers import MessageSpec
from ..parsing.retry_expressions import RetryDelay, compile_retry_delay

Json = dict[str, Any]

__all__ = [
    "Json",
    "b64d",
    "b64e",
    "callback",
    "flow",
    "load_callback",
    "load_flow",
    "load_message",
    "load_redaction",
    "load_response",
    "load_retry_delay",
    "load_spec",
    "message_static",
    "redaction",
    "response",
    "retry_delay",
    "spec",
]


def b64e(data: bytes) -> str:
    """Bytes as base64 text."""
    return base64.b64encode(data).decode()


def b64d(text: str) -> bytes:
    """Base64 text back to bytes."""
    return base64.b64decode(text)


def retry_delay(value: RetryDelay | None) -> str | None:
    """A retry-delay expression as its source text."""
    return None if value is None else value.source


def load_retry_delay(source: str | None) -> RetryDelay | None:
    """A retry-delay expression compiled again from its source."""
    return None if source is None else compile_retry_delay(source)


def redaction(value: Redaction) -> Json | None:
    """Redaction settings as JSON (None when nothing is redacted)."""
    if not value:
        return None
    return {"body": value.body, "all": value.all_headers, "headers": sorted(value.headers)}


def load_redaction(data: Json | None) -> Redaction:
    """Redaction settings from JSON."""
    if not data:
        return NO_REDACTION
    return Redaction(data["body"], data["all"], frozenset(data["headers"]))


def flow(value: FlowControlSpec | None) -> Json | None:
    """A message's flow-control settings as JSON."""
    if value is None:
        return None
    return {"key": value.key, "p": value.parallelism, "r": value.rate, "period": value.period}


def load_flow(data: Json | None) -> FlowControlSpec | None:
    """Flow-control settings from JSON."""
    if data is None:
        return None
    return FlowControlSpec(data["key"], data["p"], data["r"], data["period"])


def callback(value: CallbackConfig | None) -> Json | None:
    """A callback configuration as JSON."""
    if value is None:
        return None
    return {
        "url": value.url,
        "method": value.method,
        "headers": value.headers,
        "timeout": value.timeout,
        "retries": value.retries,
        "retry_delay": retry_delay(value.retry_delay),
        "delay": value.delay,
    }


def load_callback(data: Json | None) -> CallbackConfig | None:
    """A callback configuration from JSON."""
    if data is None:
        return None
    return CallbackConfig(
        url=data["url"],
        method=data["method"],
        headers=data["headers"],
        timeout=data["timeout"],
        retries=data["retries"],
        retry_delay=load_retry_delay(data["retry_delay"]),
        delay=data["delay"],
    )


def response(value: Response | None) -> Json | None:
    """A destination's response as JSON (body in base64)."""
    if value is None:
        return None
    return {
        "status": value.status,
        "headers": value.headers,
        "body": b64e(value.body),
        "error": value.error,
    }


def load_response(data: Json | None) -> Response | None:
    """A response from JSON."""
    if data is None:
        return None
    return Response(data["status"], data["headers"], b64d(data["body"]), data["error"])


# -- messages ---------------------------------------------------------------------------------
def message_static(m: Message) -> Json:
    """What never changes after a message is created (its body is stored apart, as a blob)."""
    return {
        "url": m.url,
        "method": m.method,
        "headers": m.headers,
        "created_at": m.created_at,
        "not_before": m.not_before,
        "max_retries": m.max_retries,
        "timeout": m.timeout,
        "order": list(m.order),
        "retry_delay": retry_delay(m.retry_delay),
        "callback": callback(m.callback),
        "failure_callback": callback(m.failure_callback),
        "labels": m.labels,
        "redact": redaction(m.redact),
        "queue_name": m.queue_name,
        "topic_name": m.topic_name,
        "endpoint_name": m.endpoint_name,
        "schedule_id": m.schedule_id,
        "caller_ip": m.caller_ip,
        "flow_control": flow(m.flow_control),
        "kind": m.kind,
        "api": m.api,
        "subject": m.subject,
        "deliver_to": m.deliver_to,
    }


def load_message(
    message_id: str, user: User, data: Json, body: bytes, state: str, retried: int, events: int
) -> Message:
    """A message from its saved row: static JSON, body and changing fields."""
    return Message(
        id=message_id,
        user=user,
        url=data["url"],
        method=data["method"],
        headers=data["headers"],
        body=body,
        created_at=data["created_at"],
        not_before=data["not_before"],
        max_retries=data["max_retries"],
        timeout=data["timeout"],
        order=tuple(data["order"]),
        retry_delay=load_retry_delay(data["retry_delay"]),
        callback=load_callback(data["callback"]),
        failure_callback=load_callback(data["failure_callback"]),
        labels=tuple(data["labels"]),
        redact=load_redaction(data["redact"]),
        queue_name=data["queue_name"],
        topic_name=data["topic_name"],
        endpoint_name=data["endpoint_name"],
        schedule_id=data["schedule_id"],
        caller_ip=data["caller_ip"],
        flow_control=load_flow(data["flow_control"]),
        kind=data["kind"],
        api=data["api"],
        subject=data["subject"],
        deliver_to=data["deliver_to"],
        retried=retried,
        state=state,
        events=events,
    )


# -- publish specs (schedules) ------------------------------------------------------------------
_SPEC_CODECS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "retry_delay": (retry_delay, load_retry_delay),
    "callback": (callback, load_callback),
    "failure_callback": (callback, load_callback),
    "redact": (redaction, load_redaction),
    "flow_control": (flow, load_flow),
    "given": (sorted, frozenset),
}
_SPEC_FIELDS = (
    "method",
    "headers",
    "retries",
    "retry_delay",
    "timeout",
    "delay",
    "not_before",
    "labels",
    "dedup_id",
    "content_dedup",
    "callback",
    "failure_callback",
    "redact",
    "flow_control",
    "cron",
    "schedule_id",
    "queue_name",
    "given",
)


def spec(value: MessageSpec) -> Json:
    """A publish spec (a schedule's) as JSON."""
    out: Json = {}
    for name in _SPEC_FIELDS:
        raw = getattr(value, name)
        codec = _SPEC_CODECS.get(name)
        out[name] = codec[0](raw) if codec else raw
    return out


def load_spec(data: Json) -> MessageSpec:
    """A publish spec from JSON; fields missing in an older row keep their defaults."""
    fields: Json = {}
    for name in _SPEC_FIELDS:
        if name in data:  # a field added later keeps its default in an older row
            codec = _SPEC_CODECS.get(name)
            fields[name] = codec[1](data[name]) if codec else data[name]
    return MessageSpec(**fields)
