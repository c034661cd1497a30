"""Builds the aiohttp application: one module per API resource adds its routes."""

from __future__ import annotations

from aiohttp import web

from ..engine import Engine
from ..users import Users
from . import (
    batch,
    capture,
    dlq,
    flow_control,
    keys,
    llm,
    logs,
    messages,
    openai,
    openai_queue,
    publish,
    queues,
    schedules,
    url_groups,
    workflows,
)
from .common import ENGINE, ERROR_RENDERERS, USERS, api_middleware
from .limits import limits_middleware

RESOURCES = [publish, messages, logs, dlq, keys, schedules, flow_control, queues, batch, url_groups]
RESOURCES.append(workflows)  # Upstash Workflow: waits, notifies, runs, logs
RESOURCES.append(capture)  # built-in capture URLs: /__capture/{name}
RESOURCES += [openai, llm, openai_queue]  # the LLM API: /v1 + /v2 OpenAI routes, /llm, /queue


def create_app(engine: Engine, users: Users) -> web.Application:
    app = web.Application(
        middlewares=[api_middleware, limits_middleware], client_max_size=64 * 1024 * 1024
    )
    app[ENGINE] = engine
    app[USERS] = users
    app[ERROR_RENDERERS] = []
    for resource in RESOURCES:
        resource.setup(app)
    return app
