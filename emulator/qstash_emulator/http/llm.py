"""Upstash's chat API: POST /llm/v1/chat/completions and GET /llm/v1/models.

Called with the QStash token (what the 2.0.x SDK's `client.chat.create`/`prompt` and the
openai client with `base_url=<QSTASH_URL>/llm/v1` call). It serves the hosted models only
and is subject to the chat rate limits (`emu.limits.configure(chat_requests=...,
chat_tokens=...)`); the other OpenAI-compatible endpoints are served here too, as under /v1.
"""

from __future__ import annotations

from aiohttp import web

from ..llm.catalog import UPSTASH_PROVIDER
from .openai import add_error_prefixes, add_routes, not_found

__all__ = ["setup"]

_PREFIX = "/llm/v1"


def setup(app: web.Application) -> None:
    """Add the /llm routes to `app`."""
    add_routes(app, _PREFIX, UPSTASH_PROVIDER, chat_limits=True)
    # Registered after the endpoints: any other /llm path is OpenAI's 404, not aiohttp's text.
    app.router.add_route("*", "/llm/{tail:.*}", not_found)
    add_error_prefixes(app, "/llm/")
