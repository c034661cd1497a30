"""POST /v2/messages/{messageId}/retry: deliver a delayed or retrying message now.

Not in the reference's OpenAPI file; the shape follows QStash's "Retry a Message Now" API page:
an empty 200, 404 for an unknown message, 400 for a queued message or one not waiting.
"""

from __future__ import annotations

from aiohttp import web

from .common import engine, user

__all__ = ["setup"]


async def run_now(request: web.Request) -> web.Response:
    """POST /v2/messages/{messageId}/retry."""
    engine(request).run_now(user(request), request.match_info["messageId"])
    return web.Response(status=200)


def setup(app: web.Application) -> None:
    """Add the route."""
    app.router.add_post("/v2/messages/{messageId}/retry", run_now)
