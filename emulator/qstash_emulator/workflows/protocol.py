"""The wire side of Upstash Workflow.

Which headers make a message part of a run, the step-list body the SDKs parse, and the
headers QStash adds when it delivers a run's message.

A workflow message is a publish carrying `Upstash-Workflow-RunId`. `Upstash-Workflow-Init: true`
starts the run (its body is the initial payload); every later step is published with
`Init: false` and a step JSON body. `Upstash-Workflow-CallType` tells a step ("step", the
default) from a `context.call` request ("toCallback"). QStash delivers a step as the run's step
list so far: `[{"messageId", "body": base64, "callType"}, ...]`, the first entry holding the
initial payload.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any, TypeGuard

from ..parsing import header_names as h
from ..parsing import safe_json
from .model import Entry

__all__ = [
    "add_missing",
    "b64",
    "callback_failure_pairs",
    "clean",
    "invoke_request",
    "is_header_map",
    "lower_map",
    "prefixed_as_workflow",
    "step_list",
]

RUN_ID = "upstash-workflow-runid"
INIT = "upstash-workflow-init"
URL = "upstash-workflow-url"
CALL_TYPE = "upstash-workflow-calltype"
INVOKE = "upstash-workflow-invoke"
SDK_VERSION = "upstash-workflow-sdk-version"
FORWARDED_SDK_VERSION = "upstash-forward-upstash-workflow-sdk-version"
LABEL = "upstash-label"
# Delivered headers (canonical names: HTTP header names are case-insensitive).
RUN_ID_OUT = "Upstash-Workflow-Runid"
URL_OUT = "Upstash-Workflow-Url"
CREATED_AT_OUT = "Upstash-Workflow-Createdat"
SDK_VERSION_OUT = "Upstash-Workflow-Sdk-Version"

_CALLBACK_WORKFLOW = "upstash-callback-workflow-"
_FAILURE_WORKFLOW = "upstash-failure-callback-workflow-"
_CALLBACK_FAILURE = "upstash-callback-failure-callback"


def lower_map(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Header pairs by lower-case name (the first value of each)."""
    out: dict[str, str] = {}
    for key, value in pairs:
        out.setdefault(key.lower(), value)
    return out


def b64(data: bytes) -> str:
    """Standard base64 text."""
    return base64.b64encode(data).decode()


def step_list(entries: Iterable[Entry]) -> bytes:
    """The body QStash delivers for a step: every entry of the run up to this one."""
    return json.dumps(
        [
            {"messageId": e.message_id, "body": b64(e.body), "callType": e.call_type}
            for e in entries
        ],
        separators=(",", ":"),
    ).encode()


def prefixed_as_workflow(pairs: Iterable[tuple[str, str]], prefix: str) -> list[tuple[str, str]]:
    """The workflow headers a callback or failure callback is delivered with.

    `Upstash-Callback-Workflow-RunId` (prefix "upstash-callback-") becomes
    `Upstash-Workflow-RunId`.
    """
    out = []
    for key, value in pairs:
        k = key.lower()
        if k.startswith(prefix + "workflow-"):
            out.append(("Upstash-Workflow-" + key[len(prefix) + len("workflow-") :], value))
    return out


def callback_failure_pairs(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """A call's `Upstash-Callback-Failure-Callback*` headers, as the callback's own."""
    strip = len("upstash-callback-")
    return [
        (key[strip:], value) for key, value in pairs if key.lower().startswith(_CALLBACK_FAILURE)
    ]


def add_missing(headers: h.Headers, name: str, value: str) -> None:
    """Add a header unless one of that name is there."""
    if h.canonical(name) not in headers:
        h.add(headers, name, value)


# Headers an SDK copies from the request it was delivered into its next step's forwards, which
# QStash sets itself on every delivery (or which describe the old request): the forwarded copy
# is dropped so the step goes out with one, current, value of each.
_NOT_CARRIED = frozenset(
    h.canonical(name)
    for name in (
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
        "te",
        "trailer",
        "accept-encoding",
        "user-agent",
        "upstash-message-id",
        "upstash-retried",
        "upstash-signature",
        "upstash-caller-ip",
        "upstash-topic-name",
        "upstash-schedule-id",
    )
)


def clean(headers: h.Headers, *, carried: bool = True) -> None:
    """Drop the carried-over copies above (`carried`) and keep one Content-Type.

    The SDKs send Content-Type both plainly and as a forward.
    """
    for name in list(headers):
        if carried and name in _NOT_CARRIED:
            del headers[name]
    ctype = headers.get("Content-Type")
    if ctype and len(ctype) > 1:
        headers["Content-Type"] = ctype[:1]


def is_header_map(value: Any) -> TypeGuard[dict[str, list[str]]]:
    """A JSON map of header names to lists of strings."""
    return isinstance(value, dict) and all(
        isinstance(v, list) and all(isinstance(x, str) for x in v) for v in value.values()
    )


def invoke_request(body: bytes) -> dict[str, Any] | None:
    """The JSON a `context.invoke` trigger carries (None: not one).

    The invoked run's `body`, and the invoker's `workflowRunId`, `workflowUrl`, `headers` and
    `step`.
    """
    try:
        found = safe_json.loads(body)
    except ValueError:
        return None
    return found if isinstance(found, dict) and "workflowRunId" in found else None
