"""Persistence in process: an Emulator given a data directory resumes its state after a restart
(virtual clock: the saved time is restored too, so every due time is checked exactly)."""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import requests_to, states
from pytest_httpserver import HTTPServer
from qstash import QStash
from qstash_emulator import Emulator
from qstash_emulator.store import MemoryStore, StoreError
from qstash_emulator.store.sqlite import APPLICATION_ID, SCHEMA_VERSION
from werkzeug import Request, Response


def client_of(emu: Emulator) -> QStash:
    return QStash(emu.token, base_url=emu.url, retry=False)


def test_the_in_process_emulator_keeps_nothing_without_a_data_dir() -> None:
    emu = Emulator()
    assert isinstance(emu.store, MemoryStore)
    assert emu.store.location is None


def test_a_delayed_message_resumes_at_its_time_and_a_retry_with_its_count(
    tmp_path: Path, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    later = target("/later")
    flaky = target("/flaky", 500, 500, 200)
    with Emulator(data_dir=tmp_path) as emu:
        client = client_of(emu)
        start = emu.now
        delayed = client.message.publish(url=later, body="later", delay="1h")
        retried = client.message.publish(url=flaky, body="again")
        emu.settle()  # attempt 0 fails: retry 1 after e^2.5 s
        emu.advance(13)  # attempt 1 fails: retry 2 after e^5 s more
        assert len(requests_to(httpserver, "/flaky")) == 2
    second_retry = start + math.exp(2.5) + math.exp(5)

    with Emulator(data_dir=tmp_path) as emu:
        client = client_of(emu)
        assert emu.now == start + 13  # the virtual clock resumes where it stopped
        assert emu.restored == 2
        emu.advance(second_retry - emu.now - 0.5)
        assert len(requests_to(httpserver, "/flaky")) == 2
        emu.advance(1)
        flaky_requests = requests_to(httpserver, "/flaky")
        assert [r.headers["Upstash-Retried"] for r in flaky_requests] == ["0", "1", "2"]
        assert states(client, retried.message_id)[-2:] == ["ACTIVE", "DELIVERED"]
        # The logs written before the restart are still there.
        assert states(client, retried.message_id)[:4] == ["CREATED", "ACTIVE", "ERROR", "RETRY"]

        emu.advance(start + 3600 - emu.now - 1)
        assert requests_to(httpserver, "/later") == []
        emu.advance(1)
        [req] = requests_to(httpserver, "/later")
        assert req.headers["Upstash-Message-Id"] == delayed.message_id
        assert emu.pending_messages == []


def test_queues_groups_schedules_flow_keys_dlq_keys_and_ids_come_back(
    tmp_path: Path, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    ok = target("/ok")
    down = target("/down", 500)
    with Emulator(data_dir=tmp_path) as emu:
        client = client_of(emu)
        client.queue.upsert("paused-q", parallelism=2, paused=True)
        queued = client.message.enqueue(queue="paused-q", url=ok, body="queued")
        client.url_group.upsert_endpoints(
            url_group="group", endpoints=[{"url": ok, "name": "a"}, {"url": down}]
        )
        hourly = client.schedule.create(destination=ok, cron="0 * * * *", body="tick")
        paused = client.schedule.create(destination=ok, cron="* * * * *")
        client.schedule.pause(paused)
        failed = client.message.publish(url=down, body="dead", retries=0)
        client.message.publish(
            url=ok, body="fc", flow_control={"key": "fk", "parallelism": 3, "rate": 10}
        )
        emu.settle()
        client.flow_control.pause("fk")
        keys = client.signing_key.rotate()
        [dlq_entry] = client.dlq.list().messages
        ids_before = {failed.message_id, queued.message_id}
        ids_before |= {m.message_id for m in client.log.list().logs}

    with Emulator(data_dir=tmp_path) as emu:
        client = client_of(emu)
        q = client.queue.get("paused-q")
        assert (q.parallelism, q.paused, q.lag) == (2, True, 1)
        group = client.url_group.get("group")
        assert [(e.url, e.name) for e in group.endpoints] == [(ok, "a"), (down, None)]
        by_id = {s.schedule_id: s for s in client.schedule.list()}
        assert by_id.keys() == {hourly, paused}
        assert (by_id[hourly].cron, by_id[hourly].paused, by_id[hourly].body) == (
            "0 * * * *",
            False,
            "tick",
        )
        assert by_id[paused].paused
        fk = client.flow_control.get("fk")
        assert (fk.wait_list_size, fk.parallelism_max, fk.rate_max) == (0, 3, 10)
        assert fk.is_paused is True
        assert client.signing_key.get() == keys
        assert emu.user.current_signing_key == keys.current
        assert [e.dlq_id for e in client.dlq.list().messages] == [dlq_entry.dlq_id]
        assert client.dlq.get(dlq_entry.dlq_id).body == "dead"

        # Ids never repeat: the counters continued.
        fresh = client.message.publish(url=ok, body="after")
        assert fresh.message_id not in ids_before
        # The schedule fires at its next cron time, the queue resumes where it was.
        client.queue.resume("paused-q")
        emu.advance(3600)
        assert [r.get_data() for r in requests_to(httpserver, "/ok")].count(b"tick") == 1
        assert b"queued" in [r.get_data() for r in requests_to(httpserver, "/ok")]


def test_a_schedule_that_missed_its_times_while_down_fires_once_at_start(
    tmp_path: Path, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/cron")
    with Emulator(data_dir=tmp_path) as emu:
        client_of(emu).schedule.create(destination=url, cron="0 * * * *")
        stopped_at = emu.now
    # Five hours later: five fire times passed while the emulator was down.
    with Emulator(data_dir=tmp_path, start_time=stopped_at + 5 * 3600 + 60) as emu:
        emu.settle()
        assert len(requests_to(httpserver, "/cron")) == 1  # caught up once, not five times
        emu.advance(3600 - 60)  # then on its cron times again
        assert len(requests_to(httpserver, "/cron")) == 2


def test_a_reset_forgets_the_saved_state(tmp_path: Path, target: Callable[..., str]) -> None:
    with Emulator(data_dir=tmp_path) as emu:
        client = client_of(emu)
        client.queue.upsert("q")
        client.message.publish(url=target("/x"), body="x", delay="1h")
        emu.reset()
        client.queue.upsert("after-reset")
    with Emulator(data_dir=tmp_path) as emu:
        assert [q.name for q in client_of(emu).queue.list()] == ["after-reset"]
        assert emu.restored == 0


def test_a_second_emulator_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    with (
        Emulator(data_dir=tmp_path),
        pytest.raises(StoreError, match="in use by another qstash-emulator"),
    ):
        Emulator(data_dir=tmp_path)


def test_a_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with pytest.raises(StoreError, match="newer qstash-emulator") as info:
        Emulator(data_dir=tmp_path)
    assert str(db) in str(info.value)
    assert db.read_bytes() == before


def test_a_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a qstash-emulator data file"):
        Emulator(data_dir=tmp_path)
    assert sqlite3.connect(db).execute("SELECT name FROM sqlite_master").fetchall() == [("notes",)]


# The first schema, spelled out as a file of that version holds it (not taken from the code).
V1_SCHEMA = [
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
]


def test_a_version_1_file_is_migrated_and_its_state_resumes(
    tmp_path: Path, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/old")
    t0 = 1_735_689_600.0
    db = tmp_path / "state.db"
    conn = sqlite3.connect(db)
    for sql in V1_SCHEMA:
        conn.execute(sql)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")
    static = {
        "url": url,
        "method": "POST",
        "headers": {"Content-Type": ["text/plain"]},
        "created_at": t0,
        "not_before": t0 + 60,
        "max_retries": 3,
        "timeout": 30.0,
        "order": [0],
        "retry_delay": None,
        "callback": None,
        "failure_callback": None,
        "labels": [],
        "redact": None,
        "queue_name": None,
        "topic_name": None,
        "endpoint_name": None,
        "schedule_id": None,
        "caller_ip": "127.0.0.1",
        "flow_control": None,
        "kind": "message",
        "api": None,
        "subject": None,
        "deliver_to": None,
    }
    conn.execute(
        "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ("msg_old", "defaultUser", json.dumps(static), b"from v1", "CREATED", 0, 1, t0 + 60, 0),
    )
    conn.execute(
        "INSERT INTO logs (user, message_id, idx, time, state) VALUES (?, ?, ?, ?, ?)",
        ("defaultUser", "msg_old", 0, t0, "CREATED"),
    )
    queue = {"name": "old-q", "created_at": t0, "updated_at": t0, "parallelism": 3, "paused": False}
    conn.execute(
        "INSERT INTO objects VALUES ('queue', 'defaultUser', 'old-q', ?, NULL)",
        (json.dumps(queue),),
    )
    conn.execute("INSERT INTO meta VALUES ('ids', ?)", (json.dumps({"message": 1, "order": 1}),))
    conn.execute("INSERT INTO meta VALUES ('clock', ?)", (repr(t0),))
    conn.commit()
    conn.close()

    with Emulator(data_dir=tmp_path) as emu:
        client = client_of(emu)
        assert emu.restored == 1
        assert client.queue.get("old-q").parallelism == 3
        assert client.message.get("msg_old").body == "from v1"
        emu.advance(60)
        [req] = requests_to(httpserver, "/old")
        assert (req.get_data(), req.headers["Upstash-Message-Id"]) == (b"from v1", "msg_old")
        assert states(client, "msg_old") == ["CREATED", "ACTIVE", "DELIVERED"]
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("SELECT finished FROM messages WHERE id = 'msg_old'").fetchone() == (1,)


def test_an_attempt_in_flight_when_the_emulator_stops_is_made_again_after_the_restart(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    arrived, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def handler(request: Request) -> Response:
        calls.append(request.headers["Upstash-Message-Id"])
        if len(calls) == 1:
            arrived.set()
            release.wait(10)  # the first attempt hangs until the emulator has stopped
        return Response("ok")

    httpserver.expect_request("/slow").respond_with_handler(handler)
    with Emulator(data_dir=tmp_path) as emu:
        sent = client_of(emu).message.publish(url=httpserver.url_for("/slow"), body="x")
        assert arrived.wait(10)
    release.set()  # stopping cancelled the attempt: its answer never reached the emulator
    with Emulator(data_dir=tmp_path) as emu:
        assert emu.restored == 1
        emu.settle()
        assert calls == [sent.message_id, sent.message_id]
        assert emu.deliveries[0].retried == 0  # at-least-once: the same attempt, again
        assert states(client_of(emu), sent.message_id) == [
            "CREATED",
            "ACTIVE",
            "ACTIVE",
            "DELIVERED",
        ]


def test_a_feature_outside_the_core_saves_and_restores_its_own_kind(tmp_path: Path) -> None:
    restored: list[tuple[str, str, object, bytes | None]] = []

    def encode(obj: dict[str, int]) -> tuple[object, bytes | None]:
        return {"n": obj["n"]}, b"blob"

    def restore(backend: object, user: str, key: str, data: object, body: bytes | None) -> None:
        restored.append((user, key, data, body))

    emu = Emulator(data_dir=tmp_path)
    emu.store.register("thing", encode, restore)
    with emu:
        emu.call_soon(emu.store.put, "thing", "defaultUser", "one", {"n": 1})
        emu.call_soon(emu.store.put, "thing", "defaultUser", "two", {"n": 2})
        emu.call_soon(emu.store.delete, "thing", "defaultUser", "two")
    assert restored == []
    emu = Emulator(data_dir=tmp_path)
    emu.store.register("thing", encode, restore)
    with emu:
        assert restored == [("defaultUser", "one", {"n": 1}, b"blob")]


def test_a_user_added_while_running_is_back_after_a_restart(tmp_path: Path) -> None:
    with Emulator(data_dir=tmp_path) as emu:
        added = emu.call_soon(emu.users.add, "alice")
        client = QStash(added.token, base_url=emu.url, retry=False)
        client.queue.upsert("alices")  # any change: its commit saves the users too
    with Emulator(data_dir=tmp_path) as emu:
        alice = emu.users["alice"]
        assert (alice.token, alice.current_signing_key) == (
            added.token,
            added.current_signing_key,
        )
        assert [q.name for q in QStash(alice.token, base_url=emu.url).queue.list()] == ["alices"]


def test_a_queue_keeps_its_order_across_a_restart(
    tmp_path: Path, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    flaky, ok = target("/first", 500, 200), target("/rest")
    with Emulator(data_dir=tmp_path) as emu:
        client = client_of(emu)
        client.queue.upsert("fifo", parallelism=1)
        client.message.enqueue(queue="fifo", url=flaky, body="1")
        client.message.enqueue(queue="fifo", url=ok, body="2")
        client.message.enqueue(queue="fifo", url=ok, body="3")
        emu.settle()  # the first fails and waits for its retry, holding the queue's slot
    with Emulator(data_dir=tmp_path) as emu:
        emu.settle()
        assert requests_to(httpserver, "/rest") == []  # the slot is still the first's
        emu.advance(13)
        assert len(requests_to(httpserver, "/first")) == 2
        assert [r.get_data() for r in requests_to(httpserver, "/rest")] == [b"2", b"3"]


def test_a_deduplication_id_still_in_its_window_holds_after_a_restart(
    tmp_path: Path, target: Callable[..., str]
) -> None:
    url = target("/dedup")
    with Emulator(data_dir=tmp_path) as emu:
        first = client_of(emu).message.publish(url=url, body="x", deduplication_id="once")
    with Emulator(data_dir=tmp_path) as emu:
        again = client_of(emu).message.publish(url=url, body="x", deduplication_id="once")
        assert (again.message_id, again.deduplicated) == (first.message_id, True)
        emu.advance("10m")  # the window has passed: a new message
        later = client_of(emu).message.publish(url=url, body="x", deduplication_id="once")
        assert later.message_id != first.message_id


def test_a_message_delivered_just_before_a_restart_is_still_readable_by_id(
    tmp_path: Path, target: Callable[..., str]
) -> None:
    with Emulator(data_dir=tmp_path) as emu:
        sent = client_of(emu).message.publish(url=target("/done"), body="done")
        emu.settle()
    with Emulator(data_dir=tmp_path) as emu:
        assert client_of(emu).message.get(sent.message_id).body == "done"
        emu.advance("1m")  # past the retention window: gone, as without a restart
        with pytest.raises(Exception, match="not found"):
            client_of(emu).message.get(sent.message_id)


def test_every_setting_of_a_message_and_a_schedule_survives_a_restart(
    tmp_path: Path, target: Callable[..., str]
) -> None:
    url, cb, fcb = target("/all"), target("/cb"), target("/fcb")
    settings: dict[str, Any] = {
        "method": "PUT",
        "headers": {"X-Custom": "yes"},
        "retries": 2,
        "retry_delay": "pow(2, retried) * 1000",
        "callback": cb,
        "failure_callback": fcb,
        "timeout": "20s",
        "label": "tagged",
        "flow_control": {"key": "k", "parallelism": 2, "rate": 5, "period": "10s"},
    }
    with Emulator(data_dir=tmp_path) as emu:
        client = client_of(emu)
        mid = client.message.publish(url=url, body="b", delay="1h", **settings).message_id
        sid = client.schedule.create(destination=url, cron="0 * * * *", body="s", **settings)
        message_before = client.message.get(mid)
        schedule_before = client.schedule.get(sid)
    with Emulator(data_dir=tmp_path) as emu:
        client = client_of(emu)
        assert client.message.get(mid) == message_before
        assert client.schedule.get(sid) == schedule_before


def test_a_change_that_cannot_be_saved_is_not_acknowledged_and_is_saved_later(
    tmp_path: Path, target: Callable[..., str]
) -> None:
    url = target("/later")
    with Emulator(data_dir=tmp_path) as emu:
        sqlite_store: Any = emu.store
        token = {"Authorization": f"Bearer {emu.token}", "Upstash-Delay": "1h"}
        # The disk refuses writes (as when it is full or read-only).
        emu.call_soon(sqlite_store.conn.execute, "PRAGMA query_only = ON")
        refused = httpx.post(f"{emu.url}/v2/publish/{url}", headers=token, content=b"1")
        assert refused.status_code == 500
        assert f"could not save the change to {tmp_path / 'state.db'}" in refused.json()["error"]
        emu.call_soon(sqlite_store.conn.execute, "PRAGMA query_only = OFF")
        accepted = httpx.post(f"{emu.url}/v2/publish/{url}", headers=token, content=b"2")
        assert accepted.status_code == 200
    with Emulator(data_dir=tmp_path) as emu:
        # The refused change was kept and went out with the next commit.
        assert sorted(m.body for m in emu.pending_messages) == [b"1", b"2"]


def test_a_change_whose_encoding_fails_is_answered_with_a_500_not_left_waiting(
    tmp_path: Path, target: Callable[..., str]
) -> None:
    url = target("/broken")
    with Emulator(data_dir=tmp_path) as emu:
        sqlite_store: Any = emu.store

        def broken(obj: Any) -> Any:
            raise TypeError("this object cannot be encoded")

        sqlite_store.register("broken", broken, lambda *a: None)
        token = {"Authorization": f"Bearer {emu.token}", "Upstash-Delay": "1h"}
        # A bug in an encoder (not a disk error): the request still gets its answer.
        emu.call_soon(sqlite_store.put, "broken", emu.user.name, "k", object())
        refused = httpx.post(f"{emu.url}/v2/publish/{url}", headers=token, content=b"1", timeout=10)
        assert refused.status_code == 500
        assert "could not save the change" in refused.json()["error"]


def test_message_rows_are_numbered_in_write_order_and_a_later_row_of_an_id_wins(
    tmp_path: Path, target: Callable[..., str]
) -> None:
    url = target("/rows")
    with Emulator(data_dir=tmp_path) as emu:
        client = client_of(emu)
        first = client.message.publish(url=url, body="a", delay="1h").message_id
        second = client.message.publish(url=url, body="b", delay="1h").message_id
    conn = sqlite3.connect(tmp_path / "state.db")
    rows = conn.execute("SELECT row, id, finished FROM messages ORDER BY row").fetchall()
    assert rows == [(1, first, 0), (2, second, 0)]
    # As if the first were written again after it finished: its later row is what it is now.
    conn.execute(
        "INSERT INTO messages (id, user, data, body, state, retried, events, due,"
        " cancel_requested, finished) SELECT id, user, data, body, 'CANCELED', retried, events,"
        " NULL, 0, 1 FROM messages WHERE id = ?",
        (first,),
    )
    conn.commit()
    conn.close()
    with Emulator(data_dir=tmp_path) as emu:
        assert emu.restored == 1
        assert [m.id for m in emu.pending_messages] == [second]


def test_log_numbering_continues_after_an_attempt_the_row_did_not_record(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    # An attempt's start (ACTIVE) is in the log but updates no message row; after a restart the
    # message's next log event still gets the next number, not the ACTIVE one's again.
    arrived, release = threading.Event(), threading.Event()

    def handler(request: Request) -> Response:
        if not arrived.is_set():
            arrived.set()
            release.wait(10)
        return Response("ok")

    httpserver.expect_request("/slow").respond_with_handler(handler)
    with Emulator(data_dir=tmp_path) as emu:
        client_of(emu).message.publish(url=httpserver.url_for("/slow"), body="x")
        assert arrived.wait(10)
    release.set()
    conn = sqlite3.connect(tmp_path / "state.db")
    assert conn.execute("SELECT state, events FROM messages").fetchall() == [("CREATED", 1)]
    conn.close()
    with Emulator(data_dir=tmp_path) as emu:
        emu.settle()
    conn = sqlite3.connect(tmp_path / "state.db")
    logged = conn.execute("SELECT idx, state FROM logs ORDER BY seq").fetchall()
    assert logged == [(0, "CREATED"), (1, "ACTIVE"), (2, "ACTIVE"), (3, "DELIVERED")]


def test_the_file_keeps_what_the_history_keeps_not_everything_ever_published(
    tmp_path: Path, target: Callable[..., str]
) -> None:
    # 600 messages delivered (1,800 log events) with a history of 30 events: the file holds the
    # events kept (with a margin, and a chunk not yet compacted), and the messages they refer to.
    url = target("/many")
    with Emulator(data_dir=tmp_path, history_max_entries=30) as emu:
        client = client_of(emu)
        dead = client.message.publish(url=target("/dead", 500), body="x", retries=0)
        for i in range(600):
            client.message.publish(url=url, body=f"m{i}")
        emu.settle()
        kept = [log.message_id for log in client.log.list().logs]
    conn = sqlite3.connect(tmp_path / "state.db")
    (logs,) = conn.execute("SELECT count(*) FROM logs").fetchone()
    rows = {mid for (mid,) in conn.execute("SELECT id FROM messages")}
    conn.close()
    # What is kept (up to 33: the index trims in chunks), a margin of 100 rows, and at most one
    # compaction's worth (100) written since the last one.
    assert 30 <= logs <= 33 + 100 + 100 + 3
    assert set(kept) <= rows and dead.message_id in rows  # the DLQ still refers to it
    assert len(rows) <= 100  # of the 601 published
    with Emulator(data_dir=tmp_path, history_max_entries=30) as emu:
        client = client_of(emu)
        restored = [log.message_id for log in client.log.list().logs]
        # The newest events, in order (the index trims in chunks: a few more or fewer).
        shared = min(len(kept), len(restored))
        assert shared >= 30 and restored[:shared] == kept[:shared]
        assert [m.message_id for m in client.dlq.list().messages] == [dead.message_id]
