"""POST /v2/batch: many publishes and enqueues in one request, validated all-or-nothing."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ..core.errors import ApiError, bad_request
from ..core.users import User
from ..parsing.publish_headers import parse_message_headers
from ..resources.destinations import BatchItem
from .common import backend, json_response, read_json, user

__all__ = ["setup"]

# Client-side names of a destination: next to "destination" they would make it ambiguous.
_OTHER_DESTINATIONS = ("url", "urlGroup", "url_group", "topic", "api")


def _body_text(body: Any) -> str | None:
    """A batch entry's body as text.

    A string as it is; any other JSON value (object, array, number, boolean) as its compact
    serialisation, which is what @upstash/qstash's `batch` sends for such a body. null is no
    body: qstash-py sends it for a message without one.
    """
    if body is None or isinstance(body, str):
        return body
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def _item(i: int, raw: Any, who: User) -> BatchItem:
    def fail(problem: str) -> ApiError:
        return bad_request(f"message {i}: {problem}")

    if not isinstance(raw, dict):
        raise fail("must be an object with destination, headers, body and queue")
    destination = raw.get("destination")
    others = [k for k in _OTHER_DESTINATIONS if raw.get(k) is not None]
    if others:
        raise fail(f"give one destination, in 'destination' (found {', '.join(others)})")
    if not isinstance(destination, str) or not destination:
        raise fail("destination is required (a URL or a URL group name)")
    headers = raw.get("headers")
    headers = {} if headers is None else headers
    if not isinstance(headers, dict):
        raise fail("headers must be an object of header names to string values")
    for name, value in headers.items():
        if not isinstance(value, str) or "\r" in value or "\n" in value:
            raise fail(f"invalid value for header {name!r}: {value!r} (a one-line string)")
    body = _body_text(raw.get("body"))
    queue = raw.get("queue")
    if queue is not None and not isinstance(queue, str):
        raise fail("queue must be a queue name")
    try:
        spec = parse_message_headers(headers.items(), who.quota)
    except ApiError as exc:
        raise fail(exc.message) from None
    if queue is not None and spec.queue_name is not None and spec.queue_name != queue:
        raise fail(f"two queues given: queue {queue!r} and Upstash-Queue-Name {spec.queue_name!r}")
    data = (body or "").encode()
    if len(data) > who.quota.max_message_size:
        raise ApiError(
            413,
            f"message {i}: size {len(data)} bytes exceeds the {who.quota.name} plan's limit of "
            f"{who.quota.max_message_size} bytes",
        )
    return BatchItem(destination, spec, data, queue or spec.queue_name)


async def _batch(request: web.Request) -> web.Response:
    who = user(request)
    data = await read_json(request)
    if not isinstance(data, list) or not data:
        raise bad_request("request body must be a non-empty JSON array of messages")
    items = [_item(i, raw, who) for i, raw in enumerate(data)]
    answers = backend(request).destinations.publish_batch(
        who, items, caller_ip=request.remote or "127.0.0.1"
    )
    return json_response(answers)


def setup(app: web.Application) -> None:
    """Add POST /v2/batch to `app`."""
    app.router.add_post("/v2/batch", _batch)
