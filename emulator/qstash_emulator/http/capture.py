"""Built-in capture URLs, so a test needs no second server.

`{emulator}/__capture/{name}[/anything]` records every request that reaches it and answers
with a chosen reply.

Deliveries reach it over real HTTP like any destination (signed, retried, logged). Paths under
`/__` skip the API's authentication. Tests in Python use the `CaptureStore` directly
(`emu.captures`; the pytest plugin does); other languages can use the control routes:

- `GET /__captures` -> `{"name": count, ...}`
- `GET /__captures/{name}` -> the recorded requests (body as text and base64)
- `PUT /__captures/{name}` with `{"status", "body", "headers"}` and/or `{"sequence": [...]}`
- `DELETE /__captures/{name}` -> forget its requests and replies
"""

from __future__ import annotations

from aiohttp import web

from ..controls.captures import PREFIX, make_reply
from .common import backend, json_response, read_json

__all__ = ["setup"]


async def _receive(request: web.Request) -> web.Response:
    store = backend(request).captures
    body = await request.read()
    try:
        reply = store.record(
            request.match_info["name"],
            request.method,
            request.path_qs,
            list(request.headers.items()),
            body,
        )
    except ValueError as exc:
        return json_response({"error": str(exc)}, 400)
    return web.Response(status=reply.status, body=reply.body, headers=dict(reply.headers))


async def _list_captures(request: web.Request) -> web.Response:
    return json_response(backend(request).captures.counts())


async def _show(request: web.Request) -> web.Response:
    records = backend(request).captures.requests(request.match_info["name"])
    return json_response([r.as_dict() for r in records])


async def _configure(request: web.Request) -> web.Response:
    data = await read_json(request)
    if not isinstance(data, dict):
        return json_response({"error": "expected a JSON object"}, 400)
    try:
        sequence = data.get("sequence")
        reply = make_reply(data) if "status" in data or "body" in data else None
        backend(request).captures.respond(request.match_info["name"], reply, sequence)
    except (ValueError, TypeError, AttributeError) as exc:
        return json_response({"error": str(exc)}, 400)
    return json_response({"ok": True})


async def _forget(request: web.Request) -> web.Response:
    backend(request).captures.forget(request.match_info["name"])
    return json_response({"ok": True})


def setup(app: web.Application) -> None:
    """Add the capture URLs and their control routes to `app`."""
    app.router.add_route("*", PREFIX + "{name}", _receive)
    app.router.add_route("*", PREFIX + "{name}/{tail:.*}", _receive)
    app.router.add_get("/__captures", _list_captures)
    app.router.add_get("/__captures/{name}", _show)
    app.router.add_put("/__captures/{name}", _configure)
    app.router.add_delete("/__captures/{name}", _forget)
