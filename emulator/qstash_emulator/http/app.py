"""Builds the aiohttp application: one module per API resource adds its routes."""

from __future__ import annotations

from aiohttp import web

from ..backend import Backend
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
from .common import BACKEND, ERROR_RENDERERS, api_middleware
from .limits import limits_middleware

RESOURCES = [publish, messages, logs, dlq, keys, schedules, flow_control, queues, batch, url_groups]
RESOURCES.append(workflows)  # Upstash Workflow: waits, notifies, runs, logs
RESOURCES.append(capture)  # built-in capture URLs: /__capture/{name}
RESOURCES += [openai, llm, openai_queue]  # the LLM API: /v1 + /v2 OpenAI routes, /llm, /queue


def create_app(backend: Backend) -> web.Application:
    app = web.Application(
        middlewares=[api_middleware, limits_middleware], client_max_size=64 * 1024 * 1024
    )
    app[BACKEND] = backend
    app[ERROR_RENDERERS] = []
    for resource in RESOURCES:
        resource.setup(app)
    return app
