"""/v2/topics: URL groups and their endpoints (QStash still calls them topics in the API)."""

from __future__ import annotations

from aiohttp import web

from ..resources.url_groups import parse_endpoints, url_groups_of
from .common import engine, json_response, read_json, user


async def list_groups(request: web.Request) -> web.Response:
    groups = url_groups_of(engine(request)).all(user(request))
    return json_response([g.json() for g in groups])


async def get_group(request: web.Request) -> web.Response:
    group = url_groups_of(engine(request)).get(user(request), request.match_info["name"])
    return json_response(group.json())


async def delete_group(request: web.Request) -> web.Response:
    url_groups_of(engine(request)).delete(user(request), request.match_info["name"])
    return web.Response(status=200)


async def add_endpoints(request: web.Request) -> web.Response:
    endpoints = parse_endpoints(await read_json(request))
    url_groups_of(engine(request)).upsert(user(request), request.match_info["name"], endpoints)
    return web.Response(status=200)


async def remove_endpoints(request: web.Request) -> web.Response:
    endpoints = parse_endpoints(await read_json(request), removing=True)
    url_groups_of(engine(request)).remove(user(request), request.match_info["name"], endpoints)
    return web.Response(status=200)


def setup(app: web.Application) -> None:
    app.router.add_get("/v2/topics", list_groups)
    app.router.add_get("/v2/topics/{name}", get_group)
    app.router.add_delete("/v2/topics/{name}", delete_group)
    app.router.add_post("/v2/topics/{name}/endpoints", add_endpoints)
    app.router.add_delete("/v2/topics/{name}/endpoints", remove_endpoints)
