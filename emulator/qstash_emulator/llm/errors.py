"""OpenAI-style errors: the exception raised by validation and the scripted error spec."""

from __future__ import annotations

import http
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LLMErrorSpec", "OpenAIError", "error_body"]

# Types and codes OpenAI uses for the statuses a script is likely to simulate.
_DEFAULT_TYPE = {429: "requests", 500: "server_error", 502: "server_error", 503: "server_error"}
_DEFAULT_CODE = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}
_DEFAULT_MESSAGE = {
    401: "Incorrect API key provided.",
    429: "Rate limit reached for requests. Please try again later.",
    500: "The server had an error while processing your request. Sorry about that!",
    503: "The engine is currently overloaded, please try again later.",
}


def error_body(
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """The body OpenAI (and OpenAI-compatible servers) answer with on an error."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:  # a status Python does not name, e.g. 499
        return f"HTTP {status}"


class OpenAIError(Exception):
    """A request the engine refuses; rendered as an OpenAI error body with `status`."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        param: str | None = None,
        code: str | None = None,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.param = param
        self.code = code
        self.type = type

    def body(self) -> dict[str, Any]:
        """The error as OpenAI's JSON body: `{"error": {"message", "type", "param", "code"}}`."""
        return error_body(self.message, type=self.type, param=self.param, code=self.code)


@dataclass(frozen=True)
class LLMErrorSpec:
    """A scripted failure: the status, the body (OpenAI shape unless `body` is given) and headers.

    >>> LLMErrorSpec(status=503)
    >>> LLMErrorSpec.rate_limited(reset_requests="20s")
    """

    status: int = 500
    message: str | None = None
    type: str | None = None
    code: str | None = None
    param: str | None = None
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.status, int) or not 400 <= self.status <= 599:
            raise ValueError(f"error status must be an int in 400..599, got {self.status!r}")
        # Header values may come from YAML as numbers; HTTP wants strings.
        object.__setattr__(self, "headers", {str(k): str(v) for k, v in self.headers.items()})

    @classmethod
    def rate_limited(
        cls,
        *,
        limit_requests: int = 60,
        remaining_requests: int = 0,
        reset_requests: str = "1s",
        limit_tokens: int = 100000,
        remaining_tokens: int | None = None,
        reset_tokens: str = "1s",
        message: str | None = None,
    ) -> LLMErrorSpec:
        """A 429 carrying the `x-ratelimit-*` headers QStash reads to schedule its retry."""
        headers = {
            "x-ratelimit-limit-requests": str(limit_requests),
            "x-ratelimit-remaining-requests": str(remaining_requests),
            "x-ratelimit-reset-requests": reset_requests,
            "x-ratelimit-limit-tokens": str(limit_tokens),
            "x-ratelimit-remaining-tokens": str(
                limit_tokens if remaining_tokens is None else remaining_tokens
            ),
            "x-ratelimit-reset-tokens": reset_tokens,
        }
        return cls(status=429, message=message, headers=headers)

    def render(self) -> dict[str, Any]:
        """The response body for this error."""
        if self.body is not None:
            return dict(self.body)
        status = self.status
        message = self.message or _DEFAULT_MESSAGE.get(status) or _phrase(status)
        default_type = _DEFAULT_TYPE.get(status, "invalid_request_error")
        return error_body(
            message,
            type=self.type or default_type,
            param=self.param,
            code=self.code or _DEFAULT_CODE.get(status),
        )
