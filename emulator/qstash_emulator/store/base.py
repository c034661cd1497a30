"""The one state API both stores implement: the engine and resources report each change here.

The in-memory objects (engine states, queues, URL groups, schedules, flow-control keys, users)
are always the live state. A store is told when they change and, if it persists, writes them
behind: `MemoryStore` ignores every call (the emulator stays exactly as fast as without a
store), `SqliteStore` buffers the changes and commits them in one transaction per loop turn.
`durable()` waits until everything reported so far is committed; the HTTP layer awaits it before
a mutating request's answer goes out, so nothing acknowledged is lost to a crash.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..backend import Backend
    from ..core.state import LogEntry

__all__ = [
    "DEDUP",
    "DLQ",
    "FLOW_KEY",
    "KINDS",
    "QUEUE",
    "SCHEDULE",
    "URL_GROUP",
    "USER",
    "Encoder",
    "Restorer",
    "Store",
    "StoreError",
]

# Kinds of objects besides messages and log entries (keyed by user name and a key).
DLQ = "dlq"  # key: dlq id; obj: DlqEntry
DEDUP = "dedup"  # key: dedup key; obj: (message id, expiry)
QUEUE = "queue"  # key: queue name; obj: Queue
URL_GROUP = "url_group"  # key: group name; obj: UrlGroup
SCHEDULE = "schedule"  # key: schedule id; obj: Schedule
FLOW_KEY = "flow_key"  # key: flow-control key; obj: KeyState
USER = "user"  # key: user name; obj: User (signing keys rotated, user added)
KINDS = (DLQ, DEDUP, QUEUE, URL_GROUP, SCHEDULE, FLOW_KEY, USER)


# A kind added by a feature outside the core (e.g. workflow runs): how to save one object
# (JSON data, blob or None) and how to put one back at startup (backend, user, key, data, blob).
Encoder = Callable[[Any], "tuple[Any, bytes | None]"]
Restorer = Callable[["Backend", str, str, Any, "bytes | None"], None]


class StoreError(Exception):
    """A data file that cannot be used (newer, corrupt, locked): the message names the file."""


class Store(Protocol):
    """What the engine and resources call; see the module doc."""

    persistent: bool
    location: str | None  # where the state is kept (None: in memory only)

    def log(self, entry: LogEntry) -> None:
        """A log entry was written: its message (state, retries, next time) changed too."""

    def put(self, kind: str, user: str, key: str, obj: Any) -> None:
        """An object of `kind` was created or changed (it is read when the change is written)."""

    def delete(self, kind: str, user: str, key: str) -> None:
        """An object of `kind` is gone."""

    def clear(self) -> None:
        """Forget everything (a reset)."""

    def register(self, kind: str, encode: Encoder, restore: Restorer) -> None:
        """Persist objects of a further `kind`, reported with `put` and `delete`.

        Register before `restore` runs (when the backend is built). `restore` is called for
        each saved object after messages, logs and the core resources are back, before any
        timer is re-armed.
        """

    @property
    def pending(self) -> bool:
        """Changes reported but not yet committed."""

    async def durable(self) -> None:
        """Return once every change reported so far is committed."""

    def restore(self, backend: Backend) -> int:
        """Load the saved state into a freshly built backend, on its loop.

        Returns:
            How many unfinished messages were re-armed.
        """

    def close(self) -> None:
        """Commit what is pending and release the file."""
