"""The default store: the in-memory state is the state, so every journal call is a no-op."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..backend import Backend
    from ..core.state import LogEntry
    from .base import Encoder, Restorer

__all__ = ["MemoryStore"]


class MemoryStore:
    """Keeps nothing beyond the live objects; the official dev server's behaviour."""

    persistent = False
    location: str | None = None
    pending = False

    def log(self, entry: LogEntry) -> None:
        """Nothing to record: the live objects are the state."""

    def put(self, kind: str, user: str, key: str, obj: Any) -> None:
        """Nothing to record."""

    def delete(self, kind: str, user: str, key: str) -> None:
        """Nothing to record."""

    def clear(self) -> None:
        """Nothing to forget beyond the live objects."""

    def register(self, kind: str, encode: Encoder, restore: Restorer) -> None:
        """Nothing to register: no kind is saved."""

    async def durable(self) -> None:
        """Everything is as durable as it gets: at once."""

    def restore(self, backend: Backend) -> int:
        """Nothing was saved; returns 0."""
        return 0

    def close(self) -> None:
        """Nothing to release."""
