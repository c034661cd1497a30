"""Where the emulator's state is kept: in memory (the default) or in a SQLite file."""

from __future__ import annotations

from .base import Store, StoreError
from .memory import MemoryStore

__all__ = ["MemoryStore", "Store", "StoreError", "open_store"]


def open_store(data_dir: str | None) -> Store:
    """A SQLite store in `data_dir`, or the memory store when it is None."""
    if data_dir is None:
        return MemoryStore()
    from .sqlite import SqliteStore  # sqlite3 is imported only when a file is used

    return SqliteStore.open(data_dir)
