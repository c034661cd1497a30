"""The one error type handlers turn into QStash's `{"error": "..."}` responses."""

from __future__ import annotations

__all__ = ["ApiError", "bad_request", "not_found"]


class ApiError(Exception):
    """An error answer: handlers turn it into `status` with QStash's `{"error": message}` body.

    Args:
        status: The HTTP status.
        message: The error text.
        headers: Extra response headers (e.g. rate-limit headers).
    """

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def bad_request(message: str) -> ApiError:
    """A 400 error with `message`."""
    return ApiError(400, message)


def not_found(message: str) -> ApiError:
    """A 404 error with `message`."""
    return ApiError(404, message)
