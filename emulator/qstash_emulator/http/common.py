"""Request context shared by every handler: the backend, the user, JSON errors."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..backend import Backend
from ..core.engine import Engine
from ..core.errors import ApiError
from ..core.users import User
from ..parsing import safe_json

__all__ = [
    "BACKEND",
    "ERROR_RENDERERS",
    "TOKEN_PARAMS",
    "USER_KEY",
    "Handler",
    "api_middleware",
    "authenticate",
    "backend",
    "engine",
    "json_response",
    "read_json",
    "token_of",
    "user",
]

BACKEND = web.AppKey("backend", Backend)
# Routes with another error shape (the OpenAI-compatible LLM API): `(path prefix, render)` with
# `render(request, exc) -> web.Response`; the first prefix the path starts with renders.
ERROR_RENDERERS = web.AppKey("error_renderers", list)

# aiohttp 3.14 wants typed request keys; older versions take plain strings.
USER_KEY: Any = web.RequestKey("user", User) if hasattr(web, "RequestKey") else "user"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Workflow webhook URLs (`context.createWebhook`): /v2/workflows/hooks/{user}/{run}/{event}.
WEBHOOKS = "/v2/workflows/hooks/"

# Query parameters that carry the token, never part of a destination URL.
TOKEN_PARAMS = ("qstashToken", "qstash_token")


def backend(request: web.Request) -> Backend:
    """The emulator's backend: the engine and every resource."""
    return request.app[BACKEND]


def engine(request: web.Request) -> Engine:
    """The engine of the backend serving `request`."""
    return request.app[BACKEND].engine


def user(request: web.Request) -> User:
    """The user `api_middleware` authenticated for `request`."""
    found: User = request[USER_KEY]
    return found


def json_response(data: Any, status: int = 200) -> web.Response:
    """A compact JSON response."""
    return web.Response(
        body=json.dumps(data, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
    )


def _error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    response = json_response({"error": message}, status)
    if headers:
        response.headers.update(headers)
    return response


def token_of(request: web.Request) -> str | None:
    """The bearer token of `request`, or one passed as a query parameter (`TOKEN_PARAMS`)."""
    auth = request.headers.get("Authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None
    for name in TOKEN_PARAMS:
        if name in request.query:
            return request.query[name]
    return None


def authenticate(request: web.Request) -> User:
    """The user whose QStash token `request` carries.

    Raises:
        ApiError: 401 without a token, or for a token no user has.
    """
    token = token_of(request)
    if not token:
        raise ApiError(
            401, "Unauthorized: pass your QSTASH_TOKEN as 'Authorization: Bearer <token>'"
        )
    found = request.app[BACKEND].users.by_token(token)
    if found is None:
        raise ApiError(401, "Unauthorized: invalid token")
    return found


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate QStash API routes and turn ApiError into QStash's JSON error body."""
    try:
        # The emulator's own routes and workflow webhook URLs (called by third parties, the
        # user named in the path) take no token.
        if not request.path.startswith(("/__", WEBHOOKS)):
            request[USER_KEY] = authenticate(request)
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            # Unknown routes and methods answer in the API's error shape, not aiohttp's text.
            allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
            message = f"{exc.reason}: {request.method} {request.path}"
            raise ApiError(exc.status, message, allow) from None
        except (RecursionError, UnicodeError) as exc:
            # Input no parser above caught (nested too deep, text that cannot be encoded): the
            # request's fault, so a 400, never a 500.
            raise ApiError(400, f"request could not be read: {type(exc).__name__}") from None
    except ApiError as exc:
        for prefix, render in request.app.get(ERROR_RENDERERS, ()):
            if request.path.startswith(prefix):
                rendered: web.Response = render(request, exc)
                return rendered
        return _error_response(exc.status, exc.message, exc.headers)


async def read_json(request: web.Request) -> Any:
    """The request's JSON body, or None for an empty body.

    Raises:
        ApiError: 400 when the body is not valid JSON.
    """
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        return safe_json.loads(raw)
    except safe_json.JsonError as exc:
        if exc.too_deep:
            raise ApiError(400, f"request body is not accepted: {exc}") from None
        raise ApiError(400, "request body is not valid JSON") from None
