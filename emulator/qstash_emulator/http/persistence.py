"""Durable before acknowledged: a changing request's answer waits for its commit."""

from __future__ import annotations

from aiohttp import web

from ..store.base import StoreError
from .common import BACKEND, Handler, error_response

_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


@web.middleware
async def durable_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Hold back the answer of a POST, PUT, PATCH or DELETE until what it changed is committed
    (one group commit per loop turn serves every request of that turn). With the memory store
    nothing is ever pending and this costs one attribute read."""
    response = await handler(request)
    store = request.app[BACKEND].store
    if store.pending and request.method not in _SAFE:
        try:
            await store.durable()
        except StoreError as exc:
            return error_response(500, str(exc))
    return response
