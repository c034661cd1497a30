"""/v2/queues (upsert, list, get, delete, pause, resume) and POST /v2/enqueue/{queue}/{dest}."""

from __future__ import annotations

from aiohttp import web

from ..core.errors import bad_request
from ..resources.destinations import status_of
from .common import backend, json_response, read_json, user
from .publish import destination_of, parse_spec

__all__ = ["setup"]


async def _upsert(request: web.Request) -> web.Response:
    data = await read_json(request)
    if not isinstance(data, dict) or not isinstance(data.get("queueName"), str):
        raise bad_request('request body must be {"queueName": ..., "parallelism": ...}')
    paused = data.get("paused", False)
    if not isinstance(paused, bool):
        raise bad_request(f"invalid paused: {paused!r}, must be true or false")
    parallelism = data.get("parallelism")
    backend(request).queues.upsert(
        user(request), data["queueName"], 1 if parallelism is None else parallelism, paused
    )
    return web.Response(status=200)


async def _list_queues(request: web.Request) -> web.Response:
    queues, who = backend(request).queues, user(request)
    return json_response([queues.json(who, q) for q in queues.all(who)])


async def _get_queue(request: web.Request) -> web.Response:
    queues, who = backend(request).queues, user(request)
    return json_response(queues.json(who, queues.get(who, request.match_info["queueName"])))


async def _delete_queue(request: web.Request) -> web.Response:
    backend(request).queues.delete(user(request), request.match_info["queueName"])
    return web.Response(status=200)


async def _pause(request: web.Request) -> web.Response:
    backend(request).queues.pause(user(request), request.match_info["queueName"])
    return web.Response(status=200)


async def _resume(request: web.Request) -> web.Response:
    backend(request).queues.resume(user(request), request.match_info["queueName"])
    return web.Response(status=200)


async def _enqueue(request: web.Request) -> web.Response:
    back, who = backend(request), user(request)
    destination = destination_of(request)
    spec = parse_spec(request)
    body = await request.read()
    back.engine.check_body(who, body)
    answer = back.destinations.publish(
        who,
        destination,
        spec,
        body,
        caller_ip=request.remote or "127.0.0.1",
        queue_name=request.match_info["queueName"],
    )
    return json_response(answer, status_of(answer))


def setup(app: web.Application) -> None:
    """Add the /v2/queues routes and POST /v2/enqueue to `app`."""
    app.router.add_post("/v2/queues", _upsert)
    app.router.add_post("/v2/queues/", _upsert)
    app.router.add_get("/v2/queues", _list_queues)
    app.router.add_get("/v2/queues/{queueName}", _get_queue)
    app.router.add_delete("/v2/queues/{queueName}", _delete_queue)
    app.router.add_post("/v2/queues/{queueName}/pause", _pause)
    app.router.add_post("/v2/queues/{queueName}/resume", _resume)
    app.router.add_post("/v2/enqueue/{queueName}/{destination:.+}", _enqueue)
