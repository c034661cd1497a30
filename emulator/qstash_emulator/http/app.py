"""Builds the aiohttp application: one module per API resource adds its routes."""

from __future__ import annotations

from aiohttp import web

from .. import dashboard
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
    run_now,
    schedules,
    url_groups,
    workflows,
)
from .common import BACKEND, ERROR_RENDERERS, api_middleware
from .limits import limits_middleware
from .local_only import LOCAL_ONLY, LocalOnly, local_only_middleware
from .persistence import durable_middleware

__all__ = ["create_app"]

_RESOURCES = [
    publish,
    messages,
    logs,
    dlq,
    keys,
    schedules,
    flow_control,
    queues,
    batch,
    url_groups,
]
_RESOURCES.append(run_now)  # POST /v2/messages/{id}/retry: deliver a waiting message now
_RESOURCES.append(workflows)  # Upstash Workflow: waits, notifies, runs, logs, DLQ
_RESOURCES.append(capture)  # built-in capture URLs: /__capture/{name}
_RESOURCES += [openai, llm, openai_queue]  # the LLM API: /v1 + /v2 OpenAI routes, /llm, /queue
_RESOURCES.append(dashboard)  # the local UI: /__dashboard


def create_app(backend: Backend) -> web.Application:
    """The aiohttp application serving QStash's API (and the LLM API) for `backend`.

    Every resource module adds its routes; handlers find `backend` through
    `http.common.backend(request)`.
    """
    # local_only first: a foreign web page is refused before anything else runs. The durability
    # wait only where something is saved (every middleware costs each request a layer).
    middlewares = [local_only_middleware, api_middleware, limits_middleware]
    if backend.store.persistent:
        middlewares.insert(1, durable_middleware)
    app = web.Application(middlewares=middlewares, client_max_size=64 * 1024 * 1024)
    app[LOCAL_ONLY] = LocalOnly()
    app[BACKEND] = backend
    app[ERROR_RENDERERS] = []
    for resource in _RESOURCES:
        resource.setup(app)
    return app
