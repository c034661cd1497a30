"""Builds the aiohttp application: one module per API resource adds its routes."""

from __future__ import annotations

from aiohttp import web

from ..engine import Engine
from ..users import Users
from . import dlq, keys, logs, messages, publish
from .common import DESTINATION_HOOKS, ENGINE, EXTRAS, USERS, api_middleware

RESOURCES = [publish, messages, logs, dlq, keys]


def create_app(engine: Engine, users: Users) -> web.Application:
    app = web.Application(middlewares=[api_middleware], client_max_size=64 * 1024 * 1024)
    app[ENGINE] = engine
    app[USERS] = users
    app[EXTRAS] = {}
    app[DESTINATION_HOOKS] = []
    for resource in RESOURCES:
        resource.setup(app)
    return app
