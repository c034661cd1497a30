"""Flow control through the official SDK: rate over virtual time, parallelism with a slow
threaded endpoint, and the management API."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from qstash import QStash
from qstash.errors import QStashError
from qstash_emulator import Emulator
from qstash_emulator.core.clock import DEFAULT_EPOCH
from qstash_emulator.core.state import FlowControlSpec
from qstash_emulator.parsing.publish_headers import MessageSpec

WAIT = 10.0  # upper bound for a thread handshake; never reached when things work


def api(emu: Emulator, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {emu.token}", **kwargs.pop("headers", {})}
    return httpx.request(method, emu.url + path, headers=headers, **kwargs)


def times_to(emu: Emulator, url: str) -> list[float]:
    return [d.time - DEFAULT_EPOCH for d in emu.engine.delivered if d.url == url]


# -- rate -------------------------------------------------------------------------------------


def test_rate_ten_per_minute_spreads_sixty_messages_over_six_windows(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    url = target("/rated")
    fc = {"key": "llm", "rate": 10, "period": "1m"}
    ids = [
        client.message.publish(url=url, body=str(i), flow_control=fc).message_id for i in range(60)
    ]
    emu.settle()
    assert times_to(emu, url) == [0.0] * 10

    info = client.flow_control.get("llm")
    assert (info.rate_max, info.rate_count, info.rate_period) == (10, 10, 60)
    assert info.rate_period_start == int(DEFAULT_EPOCH)
    assert info.wait_list_size == 50 and info.parallelism_count == 0

    emu.advance("10m")
    assert times_to(emu, url) == [60.0 * (i // 10) for i in range(60)]
    # The wait list is FIFO: messages go out in publish order.
    assert [d.message.id for d in emu.engine.delivered] == ids
    assert client.flow_control.get("llm").wait_list_size == 0


def test_limits_hold_across_publish_enqueue_batch_and_schedules(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    a, b, c, d = target("/a"), target("/b"), target("/c"), target("/d")
    fc = {"key": "shared", "rate": 2, "period": "1h"}
    client.message.publish(url=a, body="p1", flow_control=fc)
    client.message.publish(url=a, body="p2", flow_control=fc)
    # The SDK's enqueue has no flow_control parameter; the headers are the API's.
    res = api(
        emu,
        "POST",
        f"/v2/enqueue/q/{b}",
        headers={
            "Upstash-Flow-Control-Key": "shared",
            "Upstash-Flow-Control-Value": "rate=2, period=1h",
        },
        content=b"e1",
    )
    assert res.status_code in (200, 201), res.text
    client.message.batch(
        [
            {"url": c, "body": "b1", "flow_control": fc},
            {"url": c, "body": "b2", "flow_control": fc},
        ]
    )
    client.schedule.create(destination=d, cron="0 * * * *", flow_control=fc)  # one per hour
    emu.advance("3h")

    per_hour = Counter(
        int(t // 3600)
        for t in times_to(emu, a) + times_to(emu, b) + times_to(emu, c) + times_to(emu, d)
    )
    assert all(n <= 2 for n in per_hour.values()), per_hour
    assert sum(per_hour.values()) == 8  # 5 one-offs + 3 firings, 2 per hourly window
    assert times_to(emu, a) == [0.0, 0.0]  # first come, first served
    assert times_to(emu, b) == [3600.0]
    assert times_to(emu, c) == [3600.0, 7200.0]


# -- parallelism ------------------------------------------------------------------------------


class SlowEndpoint:
    """A threaded HTTP server whose requests each wait for the test to release them."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.inflight = self.max_inflight = self.completed = 0
        self.release = threading.Semaphore(0)
        slow = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with slow.cond:
                    slow.inflight += 1
                    slow.max_inflight = max(slow.max_inflight, slow.inflight)
                    slow.cond.notify_all()
                slow.release.acquire(timeout=WAIT)
                with slow.cond:
                    slow.inflight -= 1
                    slow.completed += 1
                    slow.cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/slow"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def wait(self, inflight: int, completed: int) -> None:
        with self.cond:
            ok = self.cond.wait_for(
                lambda: self.inflight == inflight and self.completed == completed, WAIT
            )
        assert ok, (self.inflight, self.completed)

    def close(self) -> None:
        for _ in range(100):
            self.release.release()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slow() -> Iterator[SlowEndpoint]:
    endpoint = SlowEndpoint()
    yield endpoint
    endpoint.close()


def test_parallelism_bounds_overlapping_requests(
    emu: Emulator, client: QStash, slow: SlowEndpoint
) -> None:
    fc = {"key": "slow-api", "parallelism": 2}
    for i in range(6):
        client.message.publish(url=slow.url, body=str(i), flow_control=fc)
    slow.wait(inflight=2, completed=0)
    info = client.flow_control.get("slow-api")
    assert (info.parallelism_max, info.parallelism_count, info.wait_list_size) == (2, 2, 4)
    glob = client.flow_control.get_global_parallelism()
    assert glob.parallelism_count == 2 and glob.parallelism_max > 0

    # Each finished request lets exactly one waiting message in.
    for done in range(1, 7):
        slow.release.release()
        slow.wait(inflight=min(2, 6 - done), completed=done)
    emu.settle()
    assert slow.max_inflight == 2
    info = client.flow_control.get("slow-api")
    assert (info.parallelism_count, info.wait_list_size) == (0, 0)


def test_without_flow_control_the_slow_endpoint_sees_all_at_once(
    emu: Emulator, client: QStash, slow: SlowEndpoint
) -> None:
    # The control case: the bound above comes from flow control, not from the server.
    for i in range(4):
        client.message.publish(url=slow.url, body=str(i))
    slow.wait(inflight=4, completed=0)
    for _ in range(4):
        slow.release.release()
    slow.wait(inflight=0, completed=4)
    emu.settle()


# -- management API ---------------------------------------------------------------------------


def test_pause_holds_messages_and_resume_releases_them(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    url = target("/p")
    fc = {"key": "k", "parallelism": 5}
    client.message.publish(url=url, flow_control=fc)
    emu.settle()
    client.flow_control.pause("k")
    for _ in range(3):
        client.message.publish(url=url, flow_control=fc)
    emu.advance("1h")
    assert len(times_to(emu, url)) == 1
    info = client.flow_control.get("k")
    assert info.is_paused and info.wait_list_size == 3
    client.flow_control.resume("k")
    emu.settle()
    assert times_to(emu, url) == [0.0, 3600.0, 3600.0, 3600.0]
    assert not client.flow_control.get("k").is_paused


def test_cancelled_waiting_message_leaves_the_wait_list(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    url = target("/c")
    fc = {"key": "k", "rate": 1, "period": "1h"}
    client.message.publish(url=url, body="first", flow_control=fc)
    second = client.message.publish(url=url, body="second", flow_control=fc).message_id
    emu.settle()
    client.message.cancel(second)
    assert client.flow_control.get("k").wait_list_size == 0
    emu.advance("2h")
    assert [d.body for d in emu.engine.delivered] == [b"first"]


def test_a_message_cancelled_between_release_and_attempt_frees_its_slot(
    emu: Emulator, target: Callable[..., str]
) -> None:
    # Engine level: the window between a release (engine.start) and the attempt is too short
    # to hit over HTTP, so drive the gate directly on the emulator's loop.
    url = target("/x")
    spec = MessageSpec(flow_control=FlowControlSpec("k", parallelism=1))
    gate, eng = emu.flow_control, emu.engine

    async def scenario() -> tuple[int, int]:
        first = eng.new_message(emu.user, url, spec, b"1", caller_ip="127.0.0.1")
        second = eng.new_message(emu.user, url, spec, b"2", caller_ip="127.0.0.1")
        assert gate.admit(first) and not gate.admit(second)
        gate.done(first)  # frees the slot: `second` is started (a task, not yet run)
        eng.cancel(emu.user, second.id)
        st = gate.get(emu.user, "k")
        return len(st.active), len(st.waiting)

    assert emu.call(scenario()) == (0, 0)
    emu.settle()
    assert [d.body for d in eng.delivered] == []  # the cancelled message never went out


def test_pin_overrides_messages_until_unpinned(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    url = target("/pin")
    slow_fc = {"key": "k", "rate": 1, "period": "1h"}
    for _ in range(4):
        client.message.publish(url=url, flow_control=slow_fc)
    emu.settle()
    assert times_to(emu, url) == [0.0]

    client.flow_control.pin("k", {"rate": 10, "period": 60, "parallelism": 3})
    emu.settle()
    assert times_to(emu, url) == [0.0] * 4  # the pin reset the window and raised the rate
    info = client.flow_control.get("k")
    assert info.is_pinned_rate and info.is_pinned_parallelism
    assert (info.rate_max, info.rate_period, info.parallelism_max) == (10, 60, 3)

    client.message.publish(url=url, flow_control=slow_fc)  # ignored while pinned
    emu.settle()
    assert client.flow_control.get("k").rate_max == 10

    client.flow_control.unpin("k", {"rate": True})
    info = client.flow_control.get("k")
    assert not info.is_pinned_rate and info.is_pinned_parallelism
    assert info.rate_max == 10  # kept until a message brings its configuration
    client.message.publish(url=url, flow_control=slow_fc)
    emu.settle()
    info = client.flow_control.get("k")
    assert (info.rate_max, info.rate_period, info.parallelism_max) == (1, 3600, 3)


def test_reset_rate_opens_a_new_window_now(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    url = target("/r")
    fc = {"key": "k", "rate": 2, "period": "1h"}
    for _ in range(5):
        client.message.publish(url=url, flow_control=fc)
    emu.advance("10m")
    assert times_to(emu, url) == [0.0, 0.0]
    client.flow_control.reset_rate("k")
    emu.settle()
    assert times_to(emu, url) == [0.0, 0.0, 600.0, 600.0]
    info = client.flow_control.get("k")
    assert info.rate_period_start == int(DEFAULT_EPOCH + 600) and info.rate_count == 2
    emu.advance("1h")
    assert times_to(emu, url)[-1] == 600.0 + 3600.0


def test_list_shapes_and_global_parallelism(
    emu: Emulator, client: QStash, target: Callable[..., str]
) -> None:
    url = target("/l")
    client.message.publish(url=url, flow_control={"key": "beta", "parallelism": 4})
    client.message.publish(url=url, flow_control={"key": "alpha", "rate": 3, "period": 30})
    emu.settle()
    raw = api(emu, "GET", "/v2/flowControl").json()
    assert [k["flowControlKey"] for k in raw] == ["alpha", "beta"]
    alpha, beta = raw
    assert alpha["rateMax"] == 3 and alpha["ratePeriod"] == 30 and alpha["rateCount"] == 1
    assert "parallelismMax" not in alpha
    assert beta["parallelismMax"] == 4 and "rateMax" not in beta
    for key in raw:
        for name in ("waitListSize", "parallelismCount", "isPaused", "isPinnedRate"):
            assert name in key
    glob = api(emu, "GET", "/v2/globalParallelism").json()
    assert glob == {"parallelismMax": 500, "parallelismCount": 0}
    assert client.flow_control.get("alpha").key == "alpha"


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "rate=fast",
        "parallelism=0",
        "rate=10, period=soon",
        "speed=3",
        "rate",
        "",
        "period=1m",
    ],
)
def test_malformed_flow_control_value_is_a_400_and_changes_nothing(
    emu: Emulator, client: QStash, target: Callable[..., str], value: str
) -> None:
    url = target("/never")
    res = api(
        emu,
        "POST",
        f"/v2/publish/{url}",
        headers={"Upstash-Flow-Control-Key": "k", "Upstash-Flow-Control-Value": value},
    )
    assert res.status_code == 400
    assert "Upstash-Flow-Control-Value" in res.json()["error"]
    emu.advance("1m")
    assert list(emu.engine.delivered) == []
    assert api(emu, "GET", "/v2/flowControl").json() == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/flowControl/nope"),
        ("POST", "/v2/flowControl/nope/pause"),
        ("POST", "/v2/flowControl/nope/resume"),
        ("POST", "/v2/flowControl/nope/pin?rate=1"),
        ("POST", "/v2/flowControl/nope/unpin?rate=true"),
        ("POST", "/v2/flowControl/nope/resetRate"),
    ],
)
def test_unknown_keys_are_404(emu: Emulator, method: str, path: str) -> None:
    res = api(emu, method, path)
    assert res.status_code == 404
    assert res.json() == {"error": "flow control key nope not found"}
    assert api(emu, "GET", "/v2/flowControl").json() == []


def test_sdk_raises_for_unknown_keys(client: QStash) -> None:
    with pytest.raises(QStashError, match="404"):
        client.flow_control.pause("nope")
    with pytest.raises(QStashError, match="404"):
        client.flow_control.resume("nope")


@pytest.mark.parametrize(
    "query",
    [
        "",
        "parallelism=0",
        "rate=abc",
        "rate=-1",
        "period=60",
        "rate=5&period=0",
    ],
)
def test_bad_pin_is_a_400_and_changes_nothing(
    emu: Emulator, client: QStash, target: Callable[..., str], query: str
) -> None:
    client.message.publish(url=target("/x"), flow_control={"key": "k", "rate": 7, "period": 10})
    emu.settle()
    before = api(emu, "GET", "/v2/flowControl/k").json()
    res = api(emu, "POST", f"/v2/flowControl/k/pin?{query}")
    assert res.status_code == 400 and res.json()["error"]
    assert api(emu, "GET", "/v2/flowControl/k").json() == before


def test_bad_unpin_flag_is_a_400(emu: Emulator, client: QStash, target: Callable[..., str]) -> None:
    client.message.publish(url=target("/x"), flow_control={"key": "k", "parallelism": 1})
    emu.settle()
    client.flow_control.pin("k", {"parallelism": 2})
    res = api(emu, "POST", "/v2/flowControl/k/unpin?parallelism=maybe")
    assert res.status_code == 400 and "parallelism" in res.json()["error"]
    assert client.flow_control.get("k").is_pinned_parallelism
