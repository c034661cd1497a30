"""/v2/topics: URL groups and their endpoints (QStash still calls them topics in the API)."""

from __future__ import annotations

from aiohttp import web

from ..resources.url_groups import parse_endpoints
from .common import backend, json_response, read_json, user


async def list_groups(request: web.Request) -> web.Response:
    groups = backend(request).url_groups.all(user(request))
    return json_response([g.json() for g in groups])


async def get_group(request: web.Request) -> web.Response:
    group = backend(request).url_groups.get(user(request), request.match_info["name"])
    return json_response(group.json())


async def delete_group(request: web.Request) -> web.Response:
    backend(request).url_groups.delete(user(request), request.match_info["name"])
    return web.Response(status=200)


async def add_endpoints(request: web.Request) -> web.Response:
    endpoints = parse_endpoints(await read_json(request))
    backend(request).url_groups.upsert(user(request), request.match_info["name"], endpoints)
    return web.Response(status=200)


async def remove_endpoints(request: web.Request) -> web.Response:
    endpoints = parse_endpoints(await read_json(request), removing=True)
    backend(request).url_groups.remove(user(request), request.match_info["name"], endpoints)
    return web.Response(status=200)


def setup(app: web.Application) -> None:
    app.router.add_get("/v2/topics", list_groups)
    app.router.add_get("/v2/topics/{name}", get_group)
    app.router.add_delete("/v2/topics/{name}", delete_group)
    app.router.add_post("/v2/topics/{name}/endpoints", add_endpoints)
    app.router.add_delete("/v2/topics/{name}/endpoints", remove_endpoints)
