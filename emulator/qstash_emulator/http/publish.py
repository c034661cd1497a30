"""POST /v2/publish/{destination} (and the older /v1/publish form)."""

from __future__ import annotations

from aiohttp import web

from ..parsing.publish_headers import MessageSpec, is_url, parse_message_headers
from ..resources.destinations import status_of
from .common import TOKEN_PARAMS, backend, json_response, user

__all__ = ["destination_of", "parse_spec", "publish", "setup"]


def destination_of(request: web.Request) -> str:
    """The destination as the client wrote it: path tail plus its own query string."""
    dest = request.match_info["destination"]
    # Some clients and proxies squeeze "https://" to "https:/"; QStash accepts both.
    for scheme in ("http:/", "https:/"):
        if dest.startswith(scheme) and not dest.startswith(scheme + "/"):
            dest = scheme + "/" + dest[len(scheme) :]
    if is_url(dest):
        query = [
            (k, v)
            for k, v in request.query.items()
            if k not in TOKEN_PARAMS and k.lower() != "upstash-header-forward"
        ]
        if query:
            from urllib.parse import urlencode

            dest += ("&" if "?" in dest else "?") + urlencode(query)
    return dest


def parse_spec(request: web.Request) -> MessageSpec:
    """The publish headers of `request` parsed into a spec, checked against the user's quota.

    Raises:
        ApiError: 400 for a malformed or out-of-range header.
    """
    return parse_message_headers(
        request.headers.items(),
        user(request).quota,
        forward_query=request.query.get("upstash-header-forward", "").lower() == "true",
    )


async def publish(request: web.Request) -> web.Response:
    """POST /v2/publish/{destination}: publish to a URL, URL group, queue or the LLM API.

    This is where one publish enters the emulator (see ARCHITECTURE.md).
    """
    back = backend(request)
    who = user(request)
    destination = destination_of(request)
    spec = parse_spec(request)
    body = await request.read()
    back.engine.check_body(who, body)
    caller_ip = request.remote or "127.0.0.1"
    if spec.cron is not None:
        # A publish carrying Upstash-Cron creates a schedule (the older form the seed shows),
        # whatever the destination: a URL, a URL group or the LLM API.
        schedule = back.schedules.create(who, destination, spec, body, caller_ip=caller_ip)
        return json_response({"scheduleId": schedule.id})
    # URLs and URL groups (one message per endpoint): the one entry point, with dedup.
    result = back.destinations.publish(who, destination, spec, body, caller_ip=caller_ip)
    return json_response(result, status_of(result))


def setup(app: web.Application) -> None:
    """Add POST /v2/publish and POST /v1/publish to `app`."""
    app.router.add_post("/v2/publish/{destination:.+}", publish)
    app.router.add_post("/v1/publish/{destination:.+}", publish)
