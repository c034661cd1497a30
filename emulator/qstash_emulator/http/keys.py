"""/v2/keys: the signing keys, and their rotation."""

from __future__ import annotations

from aiohttp import web

from .common import engine, json_response, user

__all__ = ["setup"]


async def _get_keys(request: web.Request) -> web.Response:
    who = user(request)
    return json_response({"current": who.current_signing_key, "next": who.next_signing_key})


async def _rotate(request: web.Request) -> web.Response:
    who = user(request)
    engine(request).rotate_keys(who)
    return json_response({"current": who.current_signing_key, "next": who.next_signing_key})


def setup(app: web.Application) -> None:
    """Add the /v2/keys routes to `app`."""
    app.router.add_get("/v2/keys", _get_keys)
    app.router.add_post("/v2/keys/rotate", _rotate)
