"""History a long-running server keeps: log entries and the DLQ, in key order, within a retention.

Both are kept sorted as they grow (new entries almost always land at the end), so a page of
`GET /v2/logs` or `GET /v2/dlq` is a binary search to the cursor plus the page itself: its cost
does not grow with the history. Log entries beyond the retention (a count and, optionally, an
age) are dropped oldest first, in chunks, so trimming costs O(1) per entry on average.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .state import DlqEntry, LogEntry

__all__ = [
    "DEFAULT_KEEP_DELIVERIES",
    "DEFAULT_MAX_LOG_ENTRIES",
    "DlqIndex",
    "DlqKey",
    "LogIndex",
    "LogKey",
    "Retention",
    "dlq_key",
]

LogKey = tuple[float, tuple[int, ...], int]
DlqKey = tuple[float, tuple[int, ...], str]

# Per user: about 15,000 messages' worth of log entries (a message logs ~6 events).
DEFAULT_MAX_LOG_ENTRIES = 100_000
# Deliveries kept for the plugin's assertions and emu.engine.delivered (all users).
DEFAULT_KEEP_DELIVERIES = 100_000


@dataclass
class Retention:
    """How much log history each user keeps.

    At most `max_entries` log entries, none older than `max_age` seconds (None: no age limit).
    """

    max_entries: int = DEFAULT_MAX_LOG_ENTRIES
    max_age: float | None = None

    def __post_init__(self) -> None:
        if self.max_entries < 1:
            raise ValueError("retention max_entries must be at least 1")
        if self.max_age is not None and self.max_age <= 0:
            raise ValueError("retention max_age must be positive")


def _key(entry: LogEntry) -> LogKey:
    return entry.key


def _time(entry: LogEntry) -> float:
    return entry.time


def _listed(found: LogEntry | list[LogEntry] | None) -> Sequence[LogEntry]:
    if found is None:
        return ()
    return found if isinstance(found, list) else (found,)


class LogIndex:
    """One user's log entries, oldest first by (time, message order, event index)."""

    def __init__(self, retention: Retention, now: Callable[[], float]) -> None:
        self.retention = retention
        self._now = now
        # Searched by each entry's key (bisect's key=): no parallel list of key tuples, which
        # would cost every held message another tuple.
        self._entries: list[LogEntry] = []
        # Each message's entries in key order: a filter on message ids reads only those. A
        # message with one entry (every held one) has it alone, without a list of its own.
        self._by_message: dict[str, LogEntry | list[LogEntry]] = {}

    def append(self, entry: LogEntry) -> None:
        """Add an entry in key order, then drop what the retention no longer keeps."""
        key = entry.key
        entries = self._entries
        if not entries or key >= entries[-1].key:
            entries.append(entry)
        else:  # an event of an earlier-ordered message at the same instant
            entries.insert(bisect.bisect_right(entries, key, key=_key), entry)
        by_message = self._by_message
        message_id = entry.message.id
        mine = by_message.get(message_id)
        if mine is None:
            by_message[message_id] = entry
        elif isinstance(mine, list):
            mine.append(entry)
        else:
            by_message[message_id] = [mine, entry]
        self._trim()

    def _trim(self) -> None:
        # Drop in chunks of a tenth of the limit: one memmove per chunk, not one per entry.
        limit = self.retention.max_entries
        slack = max(1, limit // 10)
        entries = self._entries
        drop = len(entries) - limit if len(entries) >= limit + slack else 0
        if self.retention.max_age is not None and entries:
            cutoff = self._now() - self.retention.max_age
            if entries[0].time < cutoff:
                old = bisect.bisect_left(entries, cutoff, key=_time)
                if old >= min(slack, 1024) or old == len(entries):
                    drop = max(drop, old)
        if drop > 0:
            by_message = self._by_message
            for gone in self._entries[:drop]:  # each message's oldest entries go first
                message_id = gone.message.id
                mine = by_message[message_id]
                if not isinstance(mine, list):
                    del by_message[message_id]
                    continue
                del mine[0]
                if len(mine) == 1:
                    by_message[message_id] = mine[0]
            del self._entries[:drop]

    def newest_first(self, after: LogKey | None = None) -> Iterator[LogEntry]:
        """Entries newest first, starting after (older than) the cursor key `after`."""
        entries = self._entries
        end = len(entries) if after is None else bisect.bisect_left(entries, after, key=_key)
        # Entries past the age limit but not yet trimmed (trimming runs in chunks) are not shown.
        start = 0
        if self.retention.max_age is not None:
            start = bisect.bisect_left(entries, self._now() - self.retention.max_age, key=_time)
        for i in range(end - 1, start - 1, -1):
            yield entries[i]

    def of_messages(self, ids: Iterable[str], after: LogKey | None = None) -> list[LogEntry]:
        """The entries of these messages, newest first, after the cursor key `after`.

        Costs the entries of those messages, not the history.
        """
        cutoff = None
        if self.retention.max_age is not None:
            cutoff = self._now() - self.retention.max_age
        found = [
            e
            for message_id in set(ids)
            for e in _listed(self._by_message.get(message_id))
            if (after is None or e.key < after) and (cutoff is None or e.time >= cutoff)
        ]
        found.sort(key=lambda e: e.key, reverse=True)
        return found

    def message_ids(self) -> Iterable[str]:
        """The ids of the messages with entries still kept."""
        return self._by_message.keys()

    def __iter__(self) -> Iterator[LogEntry]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()
        self._by_message.clear()


def dlq_key(entry: DlqEntry) -> DlqKey:
    """A DLQ entry's order key: (time, message order, DLQ id)."""
    return (entry.time, entry.message.order, entry.dlq_id)


class DlqIndex(dict[str, DlqEntry]):
    """The DLQ as the engine uses it (a dict by DLQ id), with its ids also kept in key order."""

    def __init__(self) -> None:
        super().__init__()
        self._keys: list[DlqKey] = []

    def __setitem__(self, dlq_id: str, entry: DlqEntry) -> None:
        if dlq_id in self:
            self._forget(self[dlq_id])
        super().__setitem__(dlq_id, entry)
        bisect.insort(self._keys, dlq_key(entry))

    def __delitem__(self, dlq_id: str) -> None:
        self._forget(self[dlq_id])
        super().__delitem__(dlq_id)

    def pop(self, dlq_id: str, *default: Any) -> Any:
        """Remove and return an entry (or `default`), as `dict.pop`."""
        if dlq_id in self:
            self._forget(self[dlq_id])
        return super().pop(dlq_id, *default)

    def clear(self) -> None:
        """Forget every entry."""
        super().clear()
        self._keys.clear()

    def _forget(self, entry: DlqEntry) -> None:
        key = dlq_key(entry)
        at = bisect.bisect_left(self._keys, key)
        if at < len(self._keys) and self._keys[at] == key:
            del self._keys[at]

    def newest_first(self, after: DlqKey | None = None) -> Iterator[DlqEntry]:
        """Entries newest first, starting after (older than) the cursor key `after`."""
        keys = self._keys
        end = len(keys) if after is None else bisect.bisect_left(keys, after)
        for i in range(end - 1, -1, -1):
            yield self[keys[i][2]]
