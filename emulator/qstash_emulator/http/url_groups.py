"""/v2/topics: URL groups and their endpoints (QStash still calls them topics in the API)."""

from __future__ import annotations

from aiohttp import web

from ..resources.url_groups import parse_endpoints
from .common import backend, json_response, read_json, user

__all__ = ["setup"]


async def _list_groups(request: web.Request) -> web.Response:
    groups = backend(request).url_groups.all(user(request))
    return json_response([g.json() for g in groups])


async def _get_group(request: web.Request) -> web.Response:
    group = backend(request).url_groups.get(user(request), request.match_info["name"])
    return json_response(group.json())


async def _delete_group(request: web.Request) -> web.Response:
    backend(request).url_groups.delete(user(request), request.match_info["name"])
    return web.Response(status=200)


async def _add_endpoints(request: web.Request) -> web.Response:
    endpoints = parse_endpoints(await read_json(request))
    backend(request).url_groups.upsert(user(request), request.match_info["name"], endpoints)
    return web.Response(status=200)


async def _remove_endpoints(request: web.Request) -> web.Response:
    endpoints = parse_endpoints(await read_json(request), removing=True)
    backend(request).url_groups.remove(user(request), request.match_info["name"], endpoints)
    return web.Response(status=200)


def setup(app: web.Application) -> None:
    """Add the /v2/topics routes (URL groups) to `app`."""
    app.router.add_get("/v2/topics", _list_groups)
    app.router.add_get("/v2/topics/{name}", _get_group)
    app.router.add_delete("/v2/topics/{name}", _delete_group)
    app.router.add_post("/v2/topics/{name}/endpoints", _add_endpoints)
    app.router.add_delete("/v2/topics/{name}/endpoints", _remove_endpoints)
