"""Persistence of the real server process: kill -9 halfway through a publishing run loses nothing
acknowledged; the CLI's data directory, banner and refusals. These run the standalone server on
the wall clock, so they wait (with deadlines) for real deliveries."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

TOKEN = "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0="
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Target:
    """A threaded HTTP destination: /ok answers 200, /fail 500; records (path, id, body)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bytes]] = []
        self.changed = threading.Condition()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with target.changed:
                    target.seen.append((self.path, self.headers["Upstash-Message-Id"], body))
                    target.changed.notify_all()
                self.send_response(500 if self.path == "/fail" else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def ids(self, path: str) -> set[str]:
        with self.changed:
            return {mid for p, mid, _ in self.seen if p == path}

    def wait(self, done: Callable[[], bool], timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.changed:
            while not done():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(min(left, 0.2))  # also re-checks what is not a delivery
        return True


@pytest.fixture
def target() -> Iterator[Target]:
    t = Target()
    yield t
    t.server.shutdown()
    t.server.server_close()


def start(*args: str, cwd: Path | None = None) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "qstash_emulator", "dev", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=cwd,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:  # the banner ends with the fourth user's next signing key
        lines.append(line.rstrip("\n"))
        if sum(x.startswith("QSTASH_NEXT_SIGNING_KEY") for x in lines) == 4:
            break
    else:
        proc.wait(timeout=10)
        raise AssertionError("the server exited:\n" + "\n".join(lines))
    return proc, lines


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


def test_kill_9_halfway_through_publishing_loses_nothing_acknowledged(
    tmp_path: Path, target: Target
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc, _ = start(f"--port={port}", f"--data-dir={tmp_path}")
    acked: dict[str, str] = {}  # message id -> path it went to
    enqueued: set[str] = set()
    lock = threading.Lock()
    total, kill_after = 240, 120
    try:
        with httpx.Client(base_url=base, headers=AUTH, timeout=10) as http:
            ok = http.post(
                "/v2/topics/grp/endpoints",
                json={"endpoints": [{"url": f"{target.url}/ok"}, {"url": f"{target.url}/ok"}]},
            )
            assert ok.status_code == 200
            http.post(
                "/v2/topics/grp/endpoints", json={"endpoints": [{"url": f"{target.url}/ok?b"}]}
            )
            sched = http.post(
                f"/v2/schedules/{target.url}/ok",
                headers={"Upstash-Cron": "0 0 1 1 *"},
                content=b"yearly",
            )
            schedule_id = sched.json()["scheduleId"]
            # Paused: what is enqueued stays pending until after the restart.
            http.post("/v2/queues/", json={"queueName": "work", "parallelism": 4, "paused": True})

        def publish(i: int) -> None:
            if i >= kill_after and len(acked) >= kill_after:
                return  # the server is dead or dying: nothing more can be acknowledged
            path, headers = "/ok", {"Content-Type": "text/plain"}
            if i % 10 == 3:
                path, headers["Upstash-Retries"] = "/fail", "0"
            url = f"/v2/publish/{target.url}{path}"
            if i % 7 == 5:
                url, path = "/v2/publish/grp", "/ok"  # the group's endpoints answer 200
            elif i % 5 == 1:
                url = f"/v2/enqueue/work/{target.url}{path}"
            content = f"body {i}".encode()
            if i % 11 == 8:  # a batch: two messages in one request
                url, path = "/v2/batch", "/ok"
                entries = [
                    {"destination": f"{target.url}/ok", "body": f"batch {i}.{n}"} for n in (1, 2)
                ]
                content, headers = json.dumps(entries).encode(), {}
            try:
                with httpx.Client(base_url=base, headers=AUTH, timeout=10) as http:
                    answer = http.post(url, headers=headers, content=content)
            except httpx.HTTPError:
                return  # not acknowledged
            assert answer.status_code in (200, 201), answer.text
            data = answer.json()
            items = data if isinstance(data, list) else [data]
            items = [x for item in items for x in (item if isinstance(item, list) else [item])]
            with lock:
                for item in items:
                    acked[item["messageId"]] = path
                    if "/enqueue/" in url:
                        enqueued.add(item["messageId"])
                if len(acked) >= kill_after and proc.poll() is None:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(publish, range(total)))
        assert proc.returncode == -signal.SIGKILL
        assert len(acked) >= kill_after
    finally:
        stop(proc)
    before_restart = {mid for _, mid, _ in target.seen}

    proc, banner = start(f"--port={port}", f"--data-dir={tmp_path}")
    try:
        assert any(str(tmp_path / "state.db") in line for line in banner)
        want_ok = {mid for mid, path in acked.items() if path == "/ok"}
        want_dlq = {mid for mid, path in acked.items() if path == "/fail"}
        assert want_ok and want_dlq
        queued = {mid for mid, path in acked.items() if path == "/ok" and mid in enqueued}
        assert queued and not queued & before_restart
        resumed = next(line for line in banner if "unfinished messages resumed" in line)
        assert int(resumed.split("(")[1].split()[0]) >= len(queued)
        httpx.post(f"{base}/v2/queues/work/resume", headers=AUTH).raise_for_status()
        assert target.wait(lambda: want_ok <= target.ids("/ok") | target.ids("/ok?b"))

        with httpx.Client(base_url=base, headers=AUTH, timeout=10) as http:

            def dlq_ids() -> set[str]:
                messages = http.get("/v2/dlq", params={"count": 100}).json()["messages"]
                return {m["messageId"] for m in messages}

            assert target.wait(lambda: want_dlq <= dlq_ids())
            groups = http.get("/v2/topics").json()
            assert [len(g["endpoints"]) for g in groups if g["name"] == "grp"] == [2]
            schedules = http.get("/v2/schedules").json()
            assert [(s["scheduleId"], s["cron"]) for s in schedules] == [(schedule_id, "0 0 1 1 *")]
            assert http.get("/v2/queues/work").json()["parallelism"] == 4
            after = [
                http.post(f"/v2/publish/{target.url}/ok", content=f"new {i}".encode()).json()[
                    "messageId"
                ]
                for i in range(20)
            ]
        # No id repeats: new ids are new, and no id ever carried two different bodies.
        assert not set(after) & (set(acked) | before_restart)
        bodies: dict[str, set[bytes]] = {}
        for _, mid, body in target.seen:
            bodies.setdefault(mid, set()).add(body)
        assert all(len(b) == 1 for b in bodies.values())
    finally:
        stop(proc)


def test_dev_persists_in_dot_qstash_emulator_by_default_and_says_so(tmp_path: Path) -> None:
    port = free_port()
    proc, banner = start(f"--port={port}", cwd=tmp_path)
    try:
        data = tmp_path / ".qstash-emulator"
        text = "\n".join(banner)
        assert f"State is kept in {data / 'state.db'}" in text
        assert f"delete {data}, or pass --in-memory" in text
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=AUTH) as http:
            assert http.post("/v2/queues/", json={"queueName": "kept"}).status_code == 200
    finally:
        stop(proc)
    assert proc.returncode == 0
    assert (data / "state.db").exists()
    proc, banner = start(f"--port={port}", cwd=tmp_path)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=AUTH) as http:
            assert [q["name"] for q in http.get("/v2/queues").json()] == ["kept"]
    finally:
        stop(proc)


def test_in_memory_keeps_nothing(tmp_path: Path) -> None:
    port = free_port()
    proc, banner = start(f"--port={port}", "--in-memory", cwd=tmp_path)
    stop(proc)
    assert "kept in memory only" in "\n".join(banner)
    assert list(tmp_path.iterdir()) == []


def test_a_corrupt_file_is_refused_with_a_clear_message_and_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    garbage = b"this is not a database" * 300
    db.write_bytes(garbage)
    done = subprocess.run(
        [sys.executable, "-m", "qstash_emulator", "dev", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert f"{db} is not a qstash-emulator data file, or it is corrupt" in done.stderr
    assert "It was not changed" in done.stderr
    assert "Traceback" not in done.stderr
    assert db.read_bytes() == garbage


def test_the_data_file_holds_what_was_acknowledged(tmp_path: Path, target: Target) -> None:
    """Durable before acknowledged, read from the file itself while the server still runs."""
    import sqlite3

    port = free_port()
    proc, _ = start(f"--port={port}", f"--data-dir={tmp_path}")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=AUTH) as http:
            answer = http.post(
                f"/v2/publish/{target.url}/ok", headers={"Upstash-Delay": "1h"}, content=b"x"
            )
            mid = answer.json()["messageId"]
            # Read at once, by another connection: the commit came before the answer.
            conn = sqlite3.connect(tmp_path / "state.db")
            row = conn.execute("SELECT state, body FROM messages WHERE id = ?", (mid,)).fetchone()
            conn.close()
            assert row == ("CREATED", b"x")
            meta = json.loads(
                sqlite3.connect(tmp_path / "state.db")
                .execute("SELECT value FROM meta WHERE key = 'ids'")
                .fetchone()[0]
            )
            assert meta["message"] >= 1
    finally:
        stop(proc)


def test_a_virtual_clock_server_resumes_its_time_and_a_delayed_message(
    tmp_path: Path, target: Target
) -> None:
    port = free_port()
    args = (f"--port={port}", f"--data-dir={tmp_path}", "--clock=virtual", "--quiet")
    args += ("--start-time=2025-01-01T00:00:00Z",)
    base = f"http://127.0.0.1:{port}"
    proc, _ = start(*args)
    try:
        with httpx.Client(base_url=base, headers=AUTH, timeout=10) as http:
            sent = http.post(
                f"/v2/publish/{target.url}/ok", headers={"Upstash-Delay": "2h"}, content=b"later"
            ).json()["messageId"]
            clock = http.post("/__emulator/advance", params={"by": "1h"}).json()
            assert clock["time"] == "2025-01-01T01:00:00.000Z"
    finally:
        stop(proc)
    proc, _ = start(*args)
    try:
        with httpx.Client(base_url=base, headers=AUTH, timeout=10) as http:
            assert http.get("/__emulator/clock").json()["time"] == "2025-01-01T01:00:00.000Z"
            http.post("/__emulator/advance", params={"by": "59m"}).raise_for_status()
            assert target.ids("/ok") == set()
            http.post("/__emulator/advance", params={"by": "1m"}).raise_for_status()
            assert target.ids("/ok") == {sent}  # the advance answers once due work has run
    finally:
        stop(proc)
