"""Applies the injected rate limits: daily messages on publishing endpoints, burst elsewhere."""

from __future__ import annotations

import json

from aiohttp import web

from .common import USER_KEY, Handler, backend
from .openai import OPENAI_PREFIXES

__all__ = ["limits_middleware"]

# QStash has no per-second limit on these; they count toward the daily message limit instead.
_PUBLISHING = ("/v2/publish/", "/v1/publish/", "/v2/enqueue/", "/v2/batch")


@web.middleware
async def limits_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse requests over the injected rate limits with QStash's 429 and rate-limit headers.

    Publishing endpoints count toward the daily message limit, other API calls toward the
    burst limit; the LLM routes have their own limits.
    """
    limits = backend(request).limits
    who = request.get(USER_KEY)
    if not limits.active or who is None or not request.path.startswith("/v"):
        return await handler(request)
    if request.path.startswith(OPENAI_PREFIXES):
        return await handler(request)  # the LLM API has its own limits (chat requests/tokens)
    if request.path.startswith(_PUBLISHING):
        count = 1
        if request.path.startswith("/v2/batch"):
            try:
                entries = json.loads(await request.read() or b"[]")
                count = len(entries) if isinstance(entries, list) else 1
            except ValueError:
                count = 1  # the batch handler answers the bad JSON
        limits.check_messages(who.name, count)
        response = await handler(request)
        if response.status < 300:
            limits.count_messages(who.name, count)
        return response
    limits.check_burst(who.name)
    return await handler(request)
