"""The SQLite store: the in-memory state, journaled write-behind into `<data dir>/state.db`.

Changes are buffered as they are reported and written in one transaction per event-loop turn
(group commit): the first change of a turn schedules a flush with `call_soon`, so every request
and delivery handled in that turn shares one commit. Objects are serialized when the flush runs,
so a message changed three times in a turn is written once, as it is then.

The file is in WAL mode with `synchronous=NORMAL`: a committed transaction survives the process
being killed (kill -9) at any moment; an OS crash or power cut may lose the last commits.

Schema versions are kept in `PRAGMA user_version`; an older file is migrated in place, a newer,
foreign or corrupt one is refused (`StoreError`, naming the file) and never changed. A lock file
keeps a second emulator off the same directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..core.clock import VirtualClock
from ..core.state import ACTIVE, CANCELLED, DELIVERED, FAILED, LogEntry, Message
from . import codec
from .base import (
    DEDUP,
    DLQ,
    FLOW_KEY,
    QUEUE,
    SCHEDULE,
    URL_GROUP,
    USER,
    Encoder,
    Restorer,
    StoreError,
)

if TYPE_CHECKING:
    from ..backend import Backend

__all__ = [
    "APPLICATION_ID",
    "FILE_NAME",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SqliteStore",
    "check_version",
    "encode",
    "migrate",
]

FILE_NAME = "state.db"
LOCK_NAME = "lock"
# PRAGMA application_id: marks the file as ours ("QSEm"), so a foreign SQLite file is refused.
APPLICATION_ID = 0x5153456D
_log = logging.getLogger("qstash_emulator")
_FINAL_STATES = frozenset({CANCELLED, DELIVERED, FAILED})

# Migration n takes a file from version n - 1 to n; a new file runs them all.
MIGRATIONS: list[list[str]] = [
    [  # 1: the first layout
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE messages (id TEXT PRIMARY KEY, user TEXT NOT NULL, data TEXT NOT NULL,"
        " body BLOB NOT NULL, state TEXT NOT NULL, retried INTEGER NOT NULL,"
        " events INTEGER NOT NULL, due REAL, cancel_requested INTEGER NOT NULL DEFAULT 0)",
        "CREATE TABLE logs (seq INTEGER PRIMARY KEY, user TEXT NOT NULL,"
        " message_id TEXT NOT NULL, idx INTEGER NOT NULL, time REAL NOT NULL,"
        " state TEXT NOT NULL, error TEXT, next_delivery_time REAL, response TEXT)",
        "CREATE TABLE objects (kind TEXT NOT NULL, user TEXT NOT NULL, key TEXT NOT NULL,"
        " data TEXT NOT NULL, body BLOB, PRIMARY KEY (kind, user, key))",
        "CREATE TABLE users (name TEXT PRIMARY KEY, token TEXT NOT NULL,"
        " current_key TEXT NOT NULL, next_key TEXT NOT NULL, quota TEXT NOT NULL)",
    ],
    [  # 2: unfinished messages found by an index, not by scanning every state
        "ALTER TABLE messages ADD COLUMN finished INTEGER NOT NULL DEFAULT 0",
        "UPDATE messages SET finished = 1 WHERE state IN ('CANCELED', 'DELIVERED', 'FAILED')",
        "CREATE INDEX messages_unfinished ON messages (finished) WHERE finished = 0",
    ],
    [  # 3: rows keyed by a number in write order, not by the (random) message id, so a busy
        # server appends to the table instead of touching a random index page per message
        "CREATE TABLE messages_v3 (row INTEGER PRIMARY KEY, id TEXT NOT NULL, user TEXT NOT NULL,"
        " data TEXT NOT NULL, body BLOB NOT NULL, state TEXT NOT NULL, retried INTEGER NOT NULL,"
        " events INTEGER NOT NULL, due REAL, cancel_requested INTEGER NOT NULL DEFAULT 0,"
        " finished INTEGER NOT NULL DEFAULT 0)",
        "INSERT INTO messages_v3 (id, user, data, body, state, retried, events, due,"
        " cancel_requested, finished) SELECT id, user, data, body, state, retried, events, due,"
        " cancel_requested, finished FROM messages ORDER BY rowid",
        "DROP TABLE messages",
        "ALTER TABLE messages_v3 RENAME TO messages",
        "CREATE INDEX messages_unfinished ON messages (finished) WHERE finished = 0",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)

_DELETED = object()


def _compact_every(backend: Backend) -> int:
    """Log rows written between compactions: a tenth of the history kept, at least 100."""
    return max(100, backend.engine.retention.max_entries // 10)


_TABLES = ("meta", "messages", "logs", "objects", "users")


def migrate(conn: sqlite3.Connection, path: Path) -> int:
    """Bring the file to SCHEMA_VERSION; returns the version it had."""
    version = check_version(conn, path)
    if version == SCHEMA_VERSION:
        return version
    conn.execute("BEGIN IMMEDIATE")
    try:
        for step in MIGRATIONS[version:]:
            for sql in step:
                conn.execute(sql)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return version


def check_version(conn: sqlite3.Connection, path: Path) -> int:
    """The file's schema version; StoreError if it is newer than this code reads."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} was written by a newer qstash-emulator (schema version {version}; this "
            f"one reads up to {SCHEMA_VERSION}). Upgrade qstash-emulator, or start with another "
            "--data-dir or --in-memory; the file was not changed."
        )
    return version


def _lock(directory: Path) -> IO[str] | None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory lock
        return None
    handle = (directory / LOCK_NAME).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise StoreError(
            f"{directory} is in use by another qstash-emulator; stop it, or use another "
            "--data-dir (or --in-memory)"
        ) from None
    handle.truncate(0)
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def _connect(path: Path) -> sqlite3.Connection:
    refused = (
        f"{path} is not a qstash-emulator data file, or it is corrupt. It was not changed: "
        "move it away (or use another --data-dir, or --in-memory) to start empty."
    )
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        if tables and app_id != APPLICATION_ID:
            raise StoreError(refused + " (it holds tables of another application)")
        if tables:
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise StoreError(f"{refused} (integrity check: {check})")
        check_version(conn, path)  # before anything writes to the file
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        migrate(conn, path)
    except sqlite3.DatabaseError as exc:
        if conn is not None:
            conn.close()
        raise StoreError(f"{refused} ({exc})") from None
    except BaseException:
        if conn is not None:
            conn.close()
        raise
    return conn


class SqliteStore:
    """Write-behind journal of the live state into SQLite; see the module doc."""

    persistent = True

    def __init__(self, conn: sqlite3.Connection, path: Path, lock: IO[str] | None) -> None:
        self.conn = conn
        self.path = path
        self.location: str | None = str(path)
        self._lock = lock
        self._messages: dict[str, Message] = {}
        self._logs: list[LogEntry] = []
        self._objects: dict[tuple[str, str, str], Any] = {}
        self._users = False
        self._wipe = False
        self._scheduled = False
        self._waiters: list[asyncio.Future[None]] = []
        # The row of each unfinished message (later writes update it); rows are numbered in
        # write order from `_next_row`.
        self._rows: dict[str, int] = {}
        self._next_row = 1
        self._backend: Backend | None = None
        self._saved_meta: dict[str, str] = {}
        self._saved_users: list[tuple[str, str, str, str, str]] = []
        # What the current transaction adds and finishes, applied to `_rows` once committed.
        self._new_rows: dict[str, int] = {}
        self._done_rows: list[str] = []
        self._new_meta: dict[str, str] = {}
        self._new_users: list[tuple[str, str, str, str, str]] | None = None
        self.error: BaseException | None = None  # the last failed commit, if any
        self._closed = False
        self._logged = 0  # log rows written since the last compaction
        self.extra_kinds: dict[str, tuple[Encoder, Restorer]] = {}

    @classmethod
    def open(cls, data_dir: str | os.PathLike[str]) -> SqliteStore:
        """Open (creating or migrating) `<data_dir>/state.db`; StoreError if it is unusable."""
        directory = Path(data_dir).resolve()
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the data directory {directory}: {exc}") from None
        lock = _lock(directory)
        try:
            conn = _connect(directory / FILE_NAME)
        except BaseException:
            if lock is not None:
                lock.close()
            raise
        return cls(conn, directory / FILE_NAME, lock)

    # -- the journal ------------------------------------------------------------------------
    def log(self, entry: LogEntry) -> None:
        """Buffer the entry and its message (written at the end of this loop turn).

        An attempt's start (ACTIVE) changes nothing a restart needs on the message's row (its
        log row says it; a restart delivers an unfinished message again either way), so it
        costs no row update of its own.
        """
        self._logs.append(entry)
        if entry.state != ACTIVE:
            self._messages[entry.message.id] = entry.message
        if not self._scheduled:
            self._schedule()

    def put(self, kind: str, user: str, key: str, obj: Any) -> None:
        """Buffer the object (serialized as it is when the flush runs)."""
        if kind == USER:
            self._users = True
        else:
            self._objects[(kind, user, key)] = obj
        if not self._scheduled:
            self._schedule()

    def delete(self, kind: str, user: str, key: str) -> None:
        """Buffer the removal."""
        self._objects[(kind, user, key)] = _DELETED
        if not self._scheduled:
            self._schedule()

    def clear(self) -> None:
        """Empty every table in the next commit (a reset)."""
        self._messages.clear()
        self._logs.clear()
        self._objects.clear()
        self._rows.clear()
        self._saved_meta.clear()
        self._wipe = self._users = True
        self._schedule()

    def register(self, kind: str, encode: Encoder, restore: Restorer) -> None:
        """Save and restore objects of a further kind (see `Store.register`)."""
        self.extra_kinds[kind] = (encode, restore)

    @property
    def pending(self) -> bool:
        """A flush is scheduled: changes are buffered but not yet committed."""
        return self._scheduled

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not on the loop (building, restoring): the next flush or close writes it
        self._scheduled = True
        loop.call_soon(self.flush)

    async def durable(self) -> None:
        """Return once the flush that writes every change buffered so far has committed."""
        if not self._scheduled:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    # -- writing ----------------------------------------------------------------------------
    def flush(self) -> None:
        """Write every buffered change in one transaction (and wake `durable` waiters)."""
        self._scheduled = False
        waiters, self._waiters = self._waiters, []
        try:
            self._write()
        except Exception as exc:  # a disk error or a bug: every waiting request gets an answer
            if not isinstance(exc, (sqlite3.Error, OSError)):
                _log.exception("saving to %s failed", self.path)
            self.error = exc
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(
                        StoreError(f"could not save the change to {self.path}: {exc}")
                    )
            return
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _write(self) -> None:
        messages, self._messages = self._messages, {}
        logs, self._logs = self._logs, []
        objects, self._objects = self._objects, {}
        wipe, self._wipe = self._wipe, False
        users, self._users = self._users, False
        try:
            self._transaction(messages, logs, objects, wipe, users)
        except BaseException:
            # Nothing was written: keep it all for the next commit, under what came since.
            self._messages = {**messages, **self._messages}
            self._logs = logs + self._logs
            self._objects = {**objects, **self._objects}
            self._wipe, self._users = self._wipe or wipe, self._users or users
            raise
        # Only now is it on disk: later commits update these rows, skip this metadata.
        self._rows.update(self._new_rows)
        for message_id in self._done_rows:
            self._rows.pop(message_id, None)
        self._saved_meta.update(self._new_meta)
        if self._new_users is not None:
            self._saved_users = self._new_users

    def _transaction(
        self,
        messages: dict[str, Message],
        logs: list[LogEntry],
        objects: dict[tuple[str, str, str], Any],
        wipe: bool,
        users: bool,
    ) -> None:
        self._new_rows = {}
        self._done_rows = []
        self._new_meta = {}
        self._new_users = None
        conn = self.conn
        conn.execute("BEGIN")
        try:
            if wipe:
                for table in _TABLES:
                    conn.execute(f"DELETE FROM {table}")
            if messages:
                self._write_messages(messages.values())
            if logs:
                conn.executemany(
                    "INSERT INTO logs (user, message_id, idx, time, state, error,"
                    " next_delivery_time, response) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            e.message.user.name,
                            e.message.id,
                            e.idx,
                            e.time,
                            e.state,
                            e.error,
                            e.next_delivery_time,
                            None if e.response is None else json.dumps(codec.response(e.response)),
                        )
                        for e in logs
                    ],
                )
            if objects:
                self._write_objects(objects)
            self._write_users(force=users)
            self._write_meta()
            self._logged += len(logs)
            if self._backend is not None and self._logged >= _compact_every(self._backend):
                self._logged = 0
                # Its own savepoint: a compaction that fails must not cost the changes above.
                conn.execute("SAVEPOINT compact")
                try:
                    self._compact(self._backend)
                except Exception:
                    _log.exception("compacting %s failed; it is tried again later", self.path)
                    conn.execute("ROLLBACK TO compact")
                conn.execute("RELEASE compact")
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    def _compact(self, backend: Backend) -> None:
        """Drop the rows the live state no longer holds (inside the write transaction).

        Log events past the history's retention (the newest each user keeps in memory, by
        count and age), and finished messages nothing refers to any more (no kept log event,
        DLQ entry or schedule's last firing): a long session's file and restart stay bounded
        by the retention, not by everything ever published.
        """
        engine = backend.engine
        retention = engine.retention
        # The log index trims in chunks of a tenth; and rows are in write order, entries in key
        # order (events in the same millisecond may be written out of it): keep a margin.
        margin = max(100, retention.max_entries // 10)
        referenced = backend.schedules.last_message_ids()
        for name, state in engine.states.items():
            self.conn.execute(
                "DELETE FROM logs WHERE user = ? AND seq <= (SELECT seq FROM logs WHERE user = ?"
                " ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                (name, name, len(state.logs) + margin),
            )
            referenced.update(state.logs.message_ids())
            referenced.update(state.messages)
            referenced.update(entry.message.id for entry in state.dlq.values())
        if retention.max_age is not None:
            cutoff = engine.clock.now() - retention.max_age
            self.conn.execute("DELETE FROM logs WHERE time < ?", (cutoff,))
        unreferenced = [
            (row,)
            for row, message_id in self.conn.execute(
                "SELECT row, id FROM messages WHERE finished = 1"
            )
            if message_id not in referenced
        ]
        self.conn.executemany("DELETE FROM messages WHERE row = ?", unreferenced)

    def _write_messages(self, messages: Any) -> None:
        inserts, updates = [], []
        rows = self._rows
        for m in messages:
            timer = m.timer
            due = timer.due if timer is not None and not timer.cancelled else None
            finished = m.state in _FINAL_STATES
            row = rows.get(m.id)
            if row is not None:
                updates.append(
                    (m.state, m.retried, m.events, due, m.cancel_requested, finished, row)
                )
                if finished:
                    self._done_rows.append(m.id)  # never written again: forget its row
                continue
            row = self._next_row
            self._next_row += 1
            if not finished:
                self._new_rows[m.id] = row
            inserts.append(
                (
                    row,
                    m.id,
                    m.user.name,
                    json.dumps(codec.message_static(m)),
                    m.body,
                    m.state,
                    m.retried,
                    m.events,
                    due,
                    m.cancel_requested,
                    finished,
                )
            )
        if inserts:
            self.conn.executemany(
                "INSERT INTO messages (row, id, user, data, body, state, retried, events,"
                " due, cancel_requested, finished) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                inserts,
            )
        if updates:
            self.conn.executemany(
                "UPDATE messages SET state = ?, retried = ?, events = ?, due = ?,"
                " cancel_requested = ?, finished = ? WHERE row = ?",
                updates,
            )

    def _write_objects(self, objects: dict[tuple[str, str, str], Any]) -> None:
        puts, deletes = [], []
        for (kind, user, key), obj in objects.items():
            if obj is _DELETED:
                deletes.append((kind, user, key))
            else:
                extra = self.extra_kinds.get(kind)
                data, body = extra[0](obj) if extra is not None else encode(kind, obj)
                puts.append((kind, user, key, json.dumps(data), body))
        if deletes:
            self.conn.executemany(
                "DELETE FROM objects WHERE kind = ? AND user = ? AND key = ?", deletes
            )
        if puts:
            self.conn.executemany(
                "INSERT OR REPLACE INTO objects (kind, user, key, data, body)"
                " VALUES (?, ?, ?, ?, ?)",
                puts,
            )

    def _write_users(self, *, force: bool) -> None:
        # Users are few: compare them all on each flush, so a user added or a key changed
        # outside the engine (a config file, a test) is saved with the next commit too.
        if self._backend is None:
            return
        rows = [
            (u.name, u.token, u.current_signing_key, u.next_signing_key, u.quota.name)
            for u in self._backend.users
        ]
        if rows == self._saved_users and not force:
            return
        self.conn.executemany(
            "INSERT OR REPLACE INTO users (name, token, current_key, next_key, quota)"
            " VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        self._new_users = rows

    def _write_meta(self) -> None:
        backend = self._backend
        if backend is None:
            return
        meta = {"ids": json.dumps(backend.ids.snapshot(), sort_keys=True)}
        if isinstance(backend.clock, VirtualClock):
            meta["clock"] = repr(backend.clock.now())
        changed = [(k, v) for k, v in meta.items() if self._saved_meta.get(k) != v]
        if changed:
            self.conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", changed)
            self._new_meta.update(changed)

    # -- reading ----------------------------------------------------------------------------
    def restore(self, backend: Backend) -> int:
        """Load the file into `backend` (see `store.restore`); returns messages re-armed."""
        from .restore import restore

        self._backend = backend
        count = restore(backend, self.conn, {k: r for k, (_, r) in self.extra_kinds.items()})
        # A message written twice (its row lost track of, as after a failed commit) is its
        # last row: the restore read it so too.
        self._rows = dict(
            self.conn.execute("SELECT id, row FROM messages WHERE finished = 0 ORDER BY row")
        )
        self._next_row = 1 + (self.conn.execute("SELECT max(row) FROM messages").fetchone()[0] or 0)
        self._users = True  # the users as this run has them (flags, config) get saved
        self._logged = _compact_every(backend)  # what the restore trimmed goes from the file
        if not self._scheduled:
            self._schedule()
        return count

    def close(self) -> None:
        """Commit what is pending, close the file and release the directory lock."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(sqlite3.Error):
            self.flush()
            self.conn.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def encode(kind: str, obj: Any) -> tuple[Any, bytes | None]:
    """An object of `kind` as (JSON data, blob or None)."""
    if kind == DLQ:
        return {
            "message": obj.message.id,
            "response": codec.response(obj.response),
            "time": obj.time,
        }, None
    if kind == DEDUP:
        return {"message": obj[0], "expiry": obj[1]}, None
    if kind == QUEUE:
        return {
            "name": obj.name,
            "created_at": obj.created_at,
            "updated_at": obj.updated_at,
            "parallelism": obj.parallelism,
            "paused": obj.paused,
        }, None
    if kind == URL_GROUP:
        return {
            "name": obj.name,
            "created_at": obj.created_at,
            "updated_at": obj.updated_at,
            "endpoints": [[e.url, e.name] for e in obj.endpoints],
        }, None
    if kind == SCHEDULE:
        return {
            "destination": obj.destination,
            "cron": obj.cron.expr,
            "spec": codec.spec(obj.spec),
            "created_at": obj.created_at,
            "caller_ip": obj.caller_ip,
            "order": list(obj.order),
            "paused": obj.paused,
            "last_time": obj.last_time,
            "next_time": obj.next_time,
            "last_messages": list(obj.last_messages),
            "error": obj.error,
        }, obj.body
    if kind == FLOW_KEY:
        return {
            "parallelism": obj.parallelism,
            "rate": obj.rate,
            "period": obj.period,
            "pinned_parallelism": obj.pinned_parallelism,
            "pinned_rate": obj.pinned_rate,
            "paused": obj.paused,
        }, None
    raise ValueError(f"unknown kind {kind!r}")
