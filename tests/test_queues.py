"""Queues through the official SDK: FIFO, the parallelism bound, pause/resume, retries, lag."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from helpers import requests_to, states
from pytest_httpserver import HTTPServer
from qstash import QStash
from qstash.errors import QStashError
from qstash.message import EnqueueResponse
from qstash_emulator import Emulator
from qstash_emulator.core.state import CANCELLED

WAIT = 10.0  # upper bound for waits on events; a passing run never gets near it


class HeldEndpoint:
    """A threaded endpoint whose requests block until the test releases them. It records the
    bodies in arrival order and the most requests it ever had in flight at once."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.arrived: list[str] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.permits = threading.Semaphore(0)
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                with endpoint.cond:
                    endpoint.arrived.append(body)
                    endpoint.in_flight += 1
                    endpoint.most_in_flight = max(endpoint.most_in_flight, endpoint.in_flight)
                    endpoint.cond.notify_all()
                endpoint.permits.acquire(timeout=WAIT)
                with endpoint.cond:
                    endpoint.in_flight -= 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/job"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count: int) -> list[str]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.arrived) >= count, timeout=WAIT)
            return list(self.arrived)

    def release(self, count: int = 1) -> None:
        for _ in range(count):
            self.permits.release()

    def close(self) -> None:
        self.release(100)
        self.server.shutdown()
        self.server.server_close()


def enqueue(client: QStash, queue: str, url: str, body: str, **options: Any) -> str:
    """Enqueue to a URL through the SDK; the message id."""
    res = client.message.enqueue(queue=queue, url=url, body=body, **options)
    assert isinstance(res, EnqueueResponse)
    return res.message_id


@pytest.fixture
def held() -> Iterator[HeldEndpoint]:
    endpoint = HeldEndpoint()
    yield endpoint
    endpoint.close()


@pytest.mark.parametrize("parallelism", [1, 3])
def test_a_queue_delivers_in_fifo_order_with_at_most_parallelism_in_flight(
    emu: Emulator, client: QStash, held: HeldEndpoint, parallelism: int
) -> None:
    client.queue.upsert("jobs", parallelism=parallelism)
    total = 7
    for i in range(total):
        client.message.enqueue(queue="jobs", url=held.url, body=str(i))

    # The first `parallelism` messages go out together; the rest wait for a free slot.
    first = held.wait_for(parallelism)
    assert sorted(first) == [str(i) for i in range(parallelism)]
    assert client.queue.get("jobs").lag == total
    # Each release frees one slot, and the oldest waiting message takes it.
    for n in range(parallelism, total):
        held.release()
        assert held.wait_for(n + 1)[n] == str(n)
    held.release(parallelism)
    emu.settle()

    assert held.most_in_flight == parallelism
    assert len(held.arrived) == total
    assert client.queue.get("jobs").lag == 0
    assert all(d.response is not None and d.response.status == 200 for d in emu.engine.delivered)


def test_enqueue_creates_the_queue_with_parallelism_one(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/hook")
    res = client.message.enqueue_json(queue="fresh", url=url, body={"n": 1})
    assert isinstance(res, EnqueueResponse)
    emu.settle()

    queue = client.queue.get("fresh")
    assert (queue.name, queue.parallelism, queue.paused, queue.lag) == ("fresh", 1, False, 0)
    assert queue.created_at == queue.updated_at == int(emu.now * 1000)
    [req] = requests_to(httpserver, "/hook")
    assert req.headers["Upstash-Message-Id"] == res.message_id
    assert client.log.list(filter={"queue": "fresh"}).logs[0].message_id == res.message_id


def test_a_paused_queue_holds_its_messages_and_resume_delivers_them_in_order(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/hook")
    client.queue.upsert("jobs", parallelism=2)
    client.queue.pause("jobs")
    for i in range(4):
        client.message.enqueue(queue="jobs", url=url, body=f"m{i}")
    emu.advance("1h")

    assert requests_to(httpserver, "/hook") == []
    queue = client.queue.get("jobs")
    assert queue.paused and queue.lag == 4

    client.queue.resume("jobs")
    emu.settle()
    bodies = [r.get_data(as_text=True) for r in requests_to(httpserver, "/hook")]
    assert sorted(bodies[:2]) == ["m0", "m1"] and sorted(bodies[2:]) == ["m2", "m3"]
    queue = client.queue.get("jobs")
    assert not queue.paused and queue.lag == 0


def test_a_retrying_message_keeps_its_slot(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    # queues.mdx: the next message waits for the retries of the current one.
    first = target("/first", 500, 200)
    second = target("/second")
    a = enqueue(client, "fifo", first, "a")
    client.message.enqueue(queue="fifo", url=second, body="b")
    emu.settle()

    assert len(requests_to(httpserver, "/first")) == 1
    assert requests_to(httpserver, "/second") == []
    assert client.queue.get("fifo").lag == 2

    emu.advance("13s")  # the first retry is due after e^2.5 ≈ 12.2s
    assert [d.url for d in emu.engine.delivered] == [first, first, second]
    assert states(client, a)[-1] == "DELIVERED"
    assert client.queue.get("fifo").lag == 0


def test_a_retry_due_while_paused_waits_at_the_head_of_the_queue(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    first = target("/first", 500, 200)
    second = target("/second")
    client.message.enqueue(queue="fifo", url=first, body="a")
    client.message.enqueue(queue="fifo", url=second, body="b")
    emu.settle()
    client.queue.pause("fifo")
    emu.advance("1m")  # the retry falls due while the queue is paused
    assert [d.url for d in emu.engine.delivered] == [first]

    client.queue.resume("fifo")
    emu.settle()
    assert [d.url for d in emu.engine.delivered] == [first, first, second]


def test_a_failed_message_frees_its_slot_and_lands_in_the_dlq_with_its_queue(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    broken = target("/broken", 500)
    fine = target("/fine")
    client.message.enqueue(queue="fifo", url=broken, body="a", retries=0)
    client.message.enqueue(queue="fifo", url=fine, body="b")
    emu.settle()

    assert [d.url for d in emu.engine.delivered] == [broken, fine]
    [entry] = client.dlq.list(filter={"queue": "fifo"}).messages
    assert entry.url == broken and entry.queue == "fifo"


def test_the_next_message_waits_for_the_callback_of_the_current_one(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    first, second, callback = target("/first"), target("/second"), target("/callback")
    client.message.enqueue(
        queue="fifo", url=first, body="a", callback=callback, callback_headers={"Delay": "10s"}
    )
    client.message.enqueue(queue="fifo", url=second, body="b")
    emu.settle()
    assert [d.url for d in emu.engine.delivered] == [first]

    emu.advance("10s")
    assert [d.url for d in emu.engine.delivered] == [first, callback, second]


def test_cancelling_a_waiting_message_removes_it_from_the_queue(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/hook")
    client.queue.upsert("jobs", parallelism=1, paused=True)
    ids = [enqueue(client, "jobs", url, f"m{i}") for i in range(3)]
    emu.settle()
    client.message.cancel(ids[1])
    assert client.queue.get("jobs").lag == 2

    client.queue.resume("jobs")
    emu.settle()
    assert [r.get_data(as_text=True) for r in requests_to(httpserver, "/hook")] == ["m0", "m2"]
    assert states(client, ids[1])[-1] == CANCELLED


def test_deleting_a_queue_cancels_its_waiting_messages(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/hook")
    client.queue.upsert("jobs", paused=True)
    msg = enqueue(client, "jobs", url, "x")
    client.queue.delete("jobs")
    emu.advance("1h")

    assert requests_to(httpserver, "/hook") == []
    assert states(client, msg)[-1] == CANCELLED
    assert client.queue.list() == []
    with pytest.raises(QStashError, match="404"):
        client.queue.get("jobs")


def test_upsert_updates_parallelism_and_keeps_created_at(emu: Emulator, client: QStash) -> None:
    client.queue.upsert("jobs", parallelism=2)
    created = client.queue.get("jobs").created_at
    emu.advance("1m")
    client.queue.upsert("jobs", parallelism=5)

    queue = client.queue.get("jobs")
    assert queue.parallelism == 5
    assert queue.created_at == created
    assert queue.updated_at == created + 60_000
    assert [q.name for q in client.queue.list()] == ["jobs"]


def test_queue_json_has_the_reference_fields(emu: Emulator, client: QStash) -> None:
    client.queue.upsert("jobs", parallelism=3)
    response = httpx.get(
        f"{emu.url}/v2/queues/jobs", headers={"Authorization": f"Bearer {emu.token}"}
    )
    assert response.status_code == 200
    assert response.json() == {
        "name": "jobs",
        "createdAt": int(emu.now * 1000),
        "updatedAt": int(emu.now * 1000),
        "parallelism": 3,
        "paused": False,
        "lag": 0,
    }


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"queueName": "bad name!", "parallelism": 1}, 400, "invalid queue name"),
        ({"queueName": "jobs", "parallelism": 0}, 400, "parallelism"),
        ({"queueName": "jobs", "parallelism": "2"}, 400, "parallelism"),
        ({"queueName": "jobs", "parallelism": 101}, 412, "exceeds"),
        ({"parallelism": 1}, 400, "queueName"),
    ],
)
def test_bad_upserts_are_rejected_and_change_nothing(
    emu: Emulator, client: QStash, body: dict[str, object], status: int, needle: str
) -> None:
    client.queue.upsert("jobs", parallelism=2)
    response = httpx.post(
        f"{emu.url}/v2/queues", json=body, headers={"Authorization": f"Bearer {emu.token}"}
    )
    assert response.status_code == status
    assert needle in response.json()["error"]
    [queue] = client.queue.list()
    assert (queue.name, queue.parallelism) == ("jobs", 2)


def test_unknown_queues_are_404_and_bad_enqueues_store_nothing(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    for call in (client.queue.get, client.queue.pause, client.queue.resume, client.queue.delete):
        with pytest.raises(QStashError, match="404"):
            call("missing")
    with pytest.raises(QStashError, match="invalid queue name"):
        client.message.enqueue(queue="bad$name", url=target("/hook"), body="x")
    with pytest.raises(QStashError, match="404"):
        client.message.enqueue(queue="jobs", url_group="no-such-group", body="x")
    assert client.queue.list() == []
    assert emu.engine.state(emu.user).messages == {}
    assert client.log.list().logs == []
