"""The default store: the in-memory state is the state, so every journal call is a no-op."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..backend import Backend
    from ..core.state import LogEntry
    from .base import Encoder, Restorer


class MemoryStore:
    """Keeps nothing beyond the live objects; the official dev server's behaviour."""

    persistent = False
    location: str | None = None
    pending = False

    def log(self, entry: LogEntry) -> None:
        pass

    def put(self, kind: str, user: str, key: str, obj: Any) -> None:
        pass

    def delete(self, kind: str, user: str, key: str) -> None:
        pass

    def clear(self) -> None:
        pass

    def register(self, kind: str, encode: Encoder, restore: Restorer) -> None:
        pass

    async def durable(self) -> None:
        pass

    def restore(self, backend: Backend) -> int:
        return 0

    def close(self) -> None:
        pass
