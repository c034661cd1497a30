"""QStash's JSON shapes for messages, log entries and DLQ entries (with redaction applied)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from ..core.clock import ms
from ..core.state import CallbackConfig, DlqEntry, FlowControlSpec, LogEntry, Message, Redaction
from ..parsing import header_names as h

__all__ = [
    "add_labels_and_flow_control",
    "callback_headers",
    "dlq_json",
    "log_json",
    "message_json",
    "redact_body",
    "redact_headers",
    "text_or_base64",
]


def redact_headers(headers: h.Headers, redact: Redaction) -> h.Headers:
    """The headers as the API shows them: redacted ones replaced by a hash."""
    if redact.all_headers:
        return {k: [h.redacted(v) for v in vs] for k, vs in headers.items()}
    if redact.headers:
        return {
            k: [h.redacted(v) for v in vs] if k in redact.headers else list(vs)
            for k, vs in headers.items()
        }
    return headers


def redact_body(body: bytes, redact: Redaction) -> bytes:
    """The body as the API shows it: a hash when the body is redacted."""
    if redact.body:
        return h.redacted(body.decode("utf-8", "replace")).encode()
    return body


def text_or_base64(body: bytes, text_key: str, b64_key: str) -> dict[str, str]:
    """A body as QStash shows it: UTF-8 as text, anything else base64 encoded.

    An empty body is left out (not `"body": ""`).
    """
    if not body:
        return {}
    try:
        return {text_key: body.decode("utf-8")}
    except UnicodeDecodeError:
        return {b64_key: base64.b64encode(body).decode()}


def callback_headers(cfg: CallbackConfig | None, redact: Redaction) -> h.Headers | None:
    """A callback's forwarded headers as the API shows them, or None when it has none."""
    return redact_headers(cfg.headers, redact) if cfg is not None and cfg.headers else None


def add_labels_and_flow_control(
    out: dict[str, Any], labels: Sequence[str], fc: FlowControlSpec | None
) -> None:
    """Add a message's labels and flow-control settings to its API JSON, when it has them."""
    if labels:
        # The deprecated single field holds the first label (what the SDKs document).
        out["label"] = labels[0]
        out["labels"] = list(labels)
    if fc is not None:
        out["flowControlKey"] = fc.key
        if fc.parallelism is not None:
            out["parallelism"] = fc.parallelism
        if fc.rate is not None:
            out["rate"] = fc.rate
        # Seconds; the docs' default of one second shows as 1 whether a rate is set or not.
        out["period"] = max(1, int(fc.period))


def message_json(message: Message) -> dict[str, Any]:
    """A message as GET /v2/messages/{id} answers it."""
    redact = message.redact
    out: dict[str, Any] = {
        "messageId": message.id,
        "url": message.url,
        "method": message.method,
        "header": redact_headers(message.headers, redact),
        "maxRetries": message.max_retries,
        "notBefore": ms(message.not_before),
        "createdAt": ms(message.created_at),
        "callerIP": message.caller_ip,
    }
    out.update(text_or_base64(redact_body(message.body, redact), "body", "bodyBase64"))
    optional = {
        "topicName": message.topic_name,
        "endpointName": message.endpoint_name,
        "queueName": message.queue_name,
        "scheduleId": message.schedule_id,
        "callback": message.callback.url if message.callback else None,
        "failureCallback": message.failure_callback.url if message.failure_callback else None,
        "callbackHeader": callback_headers(message.callback, redact),
        "failureCallbackHeader": callback_headers(message.failure_callback, redact),
        "retryDelayExpression": message.retry_delay.source if message.retry_delay else None,
        "api": message.api,
    }
    out.update({k: v for k, v in optional.items() if v is not None})
    add_labels_and_flow_control(out, message.labels, message.flow_control)
    return out


def log_json(entry: LogEntry) -> dict[str, Any]:
    """A log event as GET /v2/logs answers it."""
    message = entry.message
    redact = message.redact
    out: dict[str, Any] = {
        "time": ms(entry.time),
        "messageId": message.id,
        "state": entry.state,
        "url": message.url,
        "method": message.method,
        "header": redact_headers(message.headers, redact),
        "maxRetries": message.max_retries,
        "timeout": int(message.timeout * 1000),
    }
    if message.body:
        out["body"] = base64.b64encode(redact_body(message.body, redact)).decode()
    optional = {
        "error": entry.error,
        "nextDeliveryTime": ms(entry.next_delivery_time) if entry.next_delivery_time else None,
        "topicName": message.topic_name,
        "endpointName": message.endpoint_name,
        "queueName": message.queue_name,
        "scheduleId": message.schedule_id,
        "callback": message.callback.url if message.callback else None,
        "callbackHeaders": callback_headers(message.callback, redact),
        "failureCallback": message.failure_callback.url if message.failure_callback else None,
        "failureCallbackHeaders": callback_headers(message.failure_callback, redact),
        "retryDelayExpression": message.retry_delay.source if message.retry_delay else None,
        # qstash 3.x reads the log's expression under this shorter name.
        "retryDelayExpr": message.retry_delay.source if message.retry_delay else None,
        "api": message.api,
        "callerIp": message.caller_ip,
    }
    out.update({k: v for k, v in optional.items() if v is not None})
    add_labels_and_flow_control(out, message.labels, message.flow_control)
    if entry.response is not None and entry.response.status is not None and entry.state == "ERROR":
        out["responseStatus"] = entry.response.status
        out["responseHeaders"] = entry.response.headers
        out["responseHeader"] = entry.response.headers  # the spelling qstash 3.x reads
        out["responseBody"] = base64.b64encode(entry.response.body).decode()
    return out


def dlq_json(entry: DlqEntry) -> dict[str, Any]:
    """A DLQ entry as GET /v2/dlq answers it (the message plus the last response)."""
    out = message_json(entry.message)
    out["dlqId"] = entry.dlq_id
    response = entry.response
    out["responseStatus"] = response.status or 0
    out["responseHeader"] = response.headers
    out.update(text_or_base64(response.body, "responseBody", "responseBodyBase64"))
    if response.error:
        out["error"] = response.error
    return out
