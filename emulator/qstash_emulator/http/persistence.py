"""Durable before acknowledged: a changing request's answer waits for its commit."""

from __future__ import annotations

from aiohttp import web

from ..store.base import StoreError
from .common import BACKEND, Handler, json_response

__all__ = ["durable_middleware"]

_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


@web.middleware
async def durable_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Hold back a changing request's answer until what it changed is committed.

    Applies to POST, PUT, PATCH and DELETE; one group commit per loop turn serves every request
    of that turn. With the memory store nothing is ever pending: this costs one attribute read.
    A failed commit answers 500 instead of acknowledging what was not saved.
    """
    response: web.StreamResponse = await handler(request)
    store = request.app[BACKEND].store
    if store.pending and request.method not in _SAFE:
        try:
            await store.durable()
        except StoreError as exc:
            return json_response({"error": str(exc)}, 500)
    return response
