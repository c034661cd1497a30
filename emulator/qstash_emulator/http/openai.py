"""OpenAI-compatible endpoints answered by the scripted LLM engine, under /v1 and /v2.

So the emulator also stands in for a custom provider. Also the shared decoding and
rendering that /llm/v1 (http/llm.py) and /queue (http/openai_queue.py) use.

Authenticated with the QStash token (`Authorization: Bearer <token>`, what the openai client
sends with `api_key=<token>`); every error is in OpenAI's shape
`{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from ..core.errors import ApiError
from ..llm import LLMOutcome
from ..llm import rules as r
from ..llm.errors import OpenAIError, error_body
from ..llm.publishing import NO_KEY, invalid_json, parse_multipart, rate_limited
from ..llm.requests import (
    FORM_ENDPOINTS,
    IMAGE_ROUTE_PREFIX,
    MODELS,
    POST_ENDPOINTS,
    Files,
    LLMRequest,
    encode_outcome,
    form_fields,
    run_request,
    sse_events,
)
from ..llm.service import LLMService
from .common import ERROR_RENDERERS, Handler, backend, token_of, user

__all__ = [
    "CUSTOM",
    "OPENAI_PREFIXES",
    "add_error_prefixes",
    "add_routes",
    "answer",
    "decode",
    "models_handler",
    "not_found",
    "openai_error",
    "openai_json",
    "own_delivery",
    "render",
    "service",
    "setup",
]

CUSTOM = "custom"  # the provider name rules see for /v1, /v2 and /queue requests
# Path prefixes of the OpenAI-compatible routes under /v1 and /v2 (QStash's own routes share
# those roots): exempt from QStash's burst limit, errors in OpenAI's shape.
OPENAI_PREFIXES = tuple(
    f"/{version}/{tail}"
    for version in ("v1", "v2")
    for tail in ("chat/completions", "completions", "embeddings", "audio/", "images/", "models")
)


def service(request: web.Request) -> LLMService:
    """The LLM side of the backend serving `request`."""
    return backend(request).llm


# -- responses ----------------------------------------------------------------------------------
def openai_json(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A compact JSON response with extra headers."""
    response = web.Response(
        body=json.dumps(data, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
    )
    if headers:
        response.headers.update(headers)
    return response


def openai_error(exc: OpenAIError, headers: Mapping[str, str] | None = None) -> web.Response:
    """An `OpenAIError` as OpenAI's error response."""
    return openai_json(exc.body(), exc.status, headers)


def _render_api_error(request: web.Request, exc: ApiError) -> web.Response:
    """QStash's errors (auth, limits) on an OpenAI route, in OpenAI's shape."""
    if exc.status == 401:
        given = token_of(request)
        message = "Incorrect API key provided: use your QSTASH_TOKEN as the API key."
        return openai_json(
            error_body(message if given else NO_KEY, code="invalid_api_key" if given else None),
            401,
        )
    kind = "requests" if exc.status == 429 else "invalid_request_error"
    code = "rate_limit_exceeded" if exc.status == 429 else None
    return openai_json(error_body(exc.message, type=kind, code=code), exc.status, exc.headers)


async def render(request: web.Request, outcome: LLMOutcome) -> web.StreamResponse:
    """Send an engine answer in the shape its request asked for.

    SSE events for a stream (each chunk, then `data: [DONE]`), raw text for the audio text
    formats, otherwise JSON with its status and headers.
    """
    if outcome.chunks is not None and outcome.ok:
        response = web.StreamResponse(status=outcome.status)
        response.headers.update(outcome.headers)
        response.headers["Content-Type"] = "text/event-stream; charset=utf-8"
        response.headers["Cache-Control"] = "no-cache"
        await response.prepare(request)
        for event in sse_events(outcome.chunks):
            await response.write(event)
        await response.write_eof()
        return response
    body, content_type = encode_outcome(outcome)
    plain = web.Response(body=body, status=outcome.status)
    plain.headers.update(outcome.headers)
    plain.headers["Content-Type"] = content_type
    return plain


# -- requests -----------------------------------------------------------------------------------
def _image_base(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}{IMAGE_ROUTE_PREFIX}"


async def decode(request: web.Request, endpoint: str, provider: str) -> LLMRequest:
    """A request as the engine takes it; OpenAIError for a body that cannot be read."""
    base = _image_base(request)
    if endpoint in FORM_ENDPOINTS:
        fields: dict[str, list[str]] = {}
        files: Files = {}
        raw = await request.read()
        if request.content_type.startswith("multipart/"):
            # Parsed whole (the same parser as deliveries use): uploads are at most 25 MB.
            fields, files = parse_multipart(request.headers["Content-Type"], raw)
        elif request.content_type == "application/x-www-form-urlencoded":
            fields = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        return LLMRequest(endpoint, form_fields(fields), files, provider, base)
    raw = await request.read()
    body: Any = None
    if raw.strip():
        try:
            body = json.loads(raw)
        except ValueError:
            raise invalid_json() from None
    return LLMRequest(endpoint, body, provider=provider, image_base=base)


async def answer(request: web.Request, req: LLMRequest, *, chat_limits: bool) -> web.StreamResponse:
    """Run a decoded request now, wait its latency on the emulator's clock, send the answer."""
    svc = service(request)
    if chat_limits and req.endpoint == r.CHAT:
        limited = svc.check_chat_limit(user(request).name, req.body)
        if limited is not None:
            return openai_error(rate_limited(), limited)
    outcome = run_request(svc.llm, req, svc.now())
    if not (svc.clock.virtual and own_delivery(request)):
        await svc.sleep(outcome.latency)
    return await render(request, outcome)


def own_delivery(request: web.Request) -> bool:
    """Whether `request` is a delivery of this emulator's own.

    That is, a publish to its own LLM API as a custom provider. On a
    virtual clock it is answered without its latency: the delivery runs inside a scheduler step,
    which cannot wait for a later step.
    """
    return request.headers.get("User-Agent") == "Upstash-QStash" and bool(
        request.headers.get("Upstash-Message-Id")
    )


def _post_handler(endpoint: str, provider: str, *, chat_limits: bool) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            req = await decode(request, endpoint, provider)
        except OpenAIError as exc:
            return openai_error(exc)
        return await answer(request, req, chat_limits=chat_limits)

    return handle


def models_handler(provider: str) -> Handler:
    """The handler of GET .../models (and .../models/{model}) for `provider`."""

    async def handle(request: web.Request) -> web.StreamResponse:
        req = LLMRequest(MODELS, provider=provider, model_id=request.match_info.get("model"))
        return await answer(request, req, chat_limits=False)

    return handle


async def _image_file(request: web.Request) -> web.Response:
    """Generated images (`response_format: url`), unauthenticated as image URLs are."""
    data = service(request).llm.image_bytes(request.match_info["name"])
    if data is None:
        return openai_error(OpenAIError("Image not found.", status=404, code="not_found"))
    return web.Response(body=data, content_type="image/png")


async def not_found(request: web.Request) -> web.Response:
    """OpenAI's answer to a path it does not serve (under /llm and /queue)."""
    return openai_error(OpenAIError(f"Invalid URL ({request.method} {request.path})", status=404))


def add_routes(app: web.Application, prefix: str, provider: str, *, chat_limits: bool) -> None:
    """The OpenAI-compatible endpoints under `prefix` (e.g. /v1), answered synchronously."""
    for tail, endpoint in POST_ENDPOINTS.items():
        app.router.add_post(
            f"{prefix}/{tail}", _post_handler(endpoint, provider, chat_limits=chat_limits)
        )
    app.router.add_get(f"{prefix}/models", models_handler(provider))
    app.router.add_get(prefix + "/models/{model:.+}", models_handler(provider))


def add_error_prefixes(app: web.Application, *prefixes: str) -> None:
    """Render QStash's own errors (auth, limits) in OpenAI's shape under these path prefixes."""
    if ERROR_RENDERERS not in app:
        app[ERROR_RENDERERS] = []
    app[ERROR_RENDERERS].extend((prefix, _render_api_error) for prefix in prefixes)


def setup(app: web.Application) -> None:
    """Add the /v1 and /v2 OpenAI-compatible routes and the image files route to `app`."""
    for version in ("v1", "v2"):
        add_routes(app, f"/{version}", CUSTOM, chat_limits=True)
    app.router.add_get(IMAGE_ROUTE_PREFIX + "/images/{name}", _image_file)
    add_error_prefixes(app, *OPENAI_PREFIXES)
