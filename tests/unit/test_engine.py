"""The engine on its own: a virtual clock, a scripted delivery object in place of HTTP, no server
and no sockets (connecting one fails the test)."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import jwt
import pytest
from qstash_emulator.core.clock import VirtualClock, ms
from qstash_emulator.core.engine import Engine, backoff
from qstash_emulator.core.errors import ApiError
from qstash_emulator.core.ids import IdSource
from qstash_emulator.core.scheduler import Scheduler
from qstash_emulator.core.signing import body_hash
from qstash_emulator.core.state import CallbackConfig, Message, Response
from qstash_emulator.core.users import User, Users
from qstash_emulator.parsing.publish_headers import MessageSpec
from qstash_emulator.parsing.retry_expressions import compile_retry_delay

T0 = 1_735_689_600.0
WALL = 1_700_000_000.0  # the receiver's clock, for the signature's times
HOOK = "http://app.test/hook"
CALLBACK = "http://app.test/callback"
FAILURE = "http://app.test/failure"


@dataclass
class Sent:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    timeout: float
    time: float


class FakeDelivery:
    """Answers each URL from a script (the last answer repeats; 200 when none) and records
    every attempt with the virtual time it was made at."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.answers: dict[str, list[Response]] = {}
        self.sent: list[Sent] = []
        self.hold: asyncio.Event | None = None  # when given, attempts wait for it (in flight)
        self.arrived = asyncio.Event()  # an attempt has been sent

    def script(self, url: str, *answers: Response) -> None:
        self.answers[url] = list(answers)

    async def send(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes, timeout: float
    ) -> Response:
        self.sent.append(Sent(method, url, dict(headers), body, timeout, self.clock.now()))
        self.arrived.set()
        if self.hold is not None:
            await self.hold.wait()
        answers = self.answers.get(url) or [Response(200, {}, b"ok")]
        return answers.pop(0) if len(answers) > 1 else answers[0]

    def to(self, url: str) -> list[Sent]:
        return [s for s in self.sent if s.url == url]


def status(code: int, body: bytes = b"", **headers: str) -> Response:
    return Response(code, {k.replace("_", "-"): [v] for k, v in headers.items()}, body)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the engine's unit tests must not open a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@dataclass
class World:
    clock: VirtualClock
    scheduler: Scheduler
    delivery: FakeDelivery
    engine: Engine
    user: User

    def publish(self, body: bytes = b"hello", url: str = HOOK, **spec: object) -> str:
        answer = self.engine.publish_url(
            self.user, url, MessageSpec(**spec), body, caller_ip="10.0.0.1"
        )
        return str(answer["messageId"])

    def states(self, message_id: str) -> list[str]:
        entries = [e for e in self.engine.state(self.user).logs if e.message.id == message_id]
        return [e.state for e in sorted(entries, key=lambda e: e.key)]

    def message_to(self, url: str) -> Message:
        [entry] = {
            e.message.id: e for e in self.engine.state(self.user).logs if e.message.url == url
        }.values()
        return entry.message


@pytest.fixture
def world() -> Iterator[World]:
    clock = VirtualClock(T0, follow_freezegun=False)
    scheduler = Scheduler(clock)
    users = Users()
    delivery = FakeDelivery(clock)
    engine = Engine(
        clock=clock,
        scheduler=scheduler,
        users=users,
        ids=IdSource(7),
        delivery=delivery,  # type: ignore[arg-type]
        wall=lambda: WALL,
    )
    yield World(clock, scheduler, delivery, engine, users.default)
    assert scheduler.errors == []  # nothing failed inside the engine


# -- publish -> delivered ----------------------------------------------------------------------


async def test_publish_is_delivered_signed_and_logged(world: World) -> None:
    seen = []
    world.engine.delivery_listeners.append(seen.append)
    message_id = world.publish(b'{"n": 1}', headers={"Content-Type": ["application/json"]})
    await world.scheduler.settle()

    [sent] = world.delivery.sent
    assert (sent.method, sent.url, sent.body, sent.time) == ("POST", HOOK, b'{"n": 1}', T0)
    assert sent.headers["Upstash-Message-Id"] == message_id
    assert sent.headers["Upstash-Retried"] == "0"
    assert sent.headers["Upstash-Caller-Ip"] == "10.0.0.1"
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.timeout == world.user.quota.max_timeout
    assert world.states(message_id) == ["CREATED", "ACTIVE", "DELIVERED"]
    assert message_id not in world.engine.state(world.user).messages  # final: gone
    [record] = seen
    assert record.message.id == message_id and record.response is not None
    assert record.response.status == 200
    assert list(world.engine.delivered) == [record]


async def test_the_signature_is_the_users_and_stamped_with_the_wall_clock(world: World) -> None:
    world.publish(b"body")
    await world.scheduler.settle()
    [sent] = world.delivery.sent
    # WALL lies in the past (fixed, for a deterministic token): decode without time checks.
    claims = jwt.decode(
        sent.headers["Upstash-Signature"],
        world.user.current_signing_key,
        algorithms=["HS256"],
        issuer="Upstash",
        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
    )
    assert claims["sub"] == HOOK
    assert claims["iat"] == claims["nbf"] == int(WALL)
    assert claims["body"] == body_hash(b"body")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            sent.headers["Upstash-Signature"],
            world.user.next_signing_key,
            algorithms=["HS256"],
            options={"verify_exp": False, "verify_nbf": False},
        )


async def test_a_delayed_message_waits_for_its_time(world: World) -> None:
    message_id = world.publish(delay=3600.0)
    await world.scheduler.settle()
    assert world.delivery.sent == []
    assert world.engine.get_message(world.user, message_id).not_before == T0 + 3600
    await world.scheduler.advance(3599)
    assert world.delivery.sent == []
    await world.scheduler.advance(1)
    assert [s.time for s in world.delivery.sent] == [T0 + 3600]


# -- retries and the DLQ -----------------------------------------------------------------------


async def test_failures_are_retried_on_the_backoff_ladder_then_dead_lettered(
    world: World,
) -> None:
    world.delivery.script(HOOK, status(500, b"boom"))
    message_id = world.publish(retries=3)
    await world.scheduler.settle()
    assert len(world.delivery.sent) == 1

    # The first retry waits e^2.5 s: nothing a moment before, the attempt right at it.
    await world.scheduler.advance(backoff(1) - 0.01)
    assert len(world.delivery.sent) == 1
    await world.scheduler.run_until_idle()

    times = [s.time for s in world.delivery.sent]
    expected = [T0]
    for n in (1, 2, 3):
        expected.append(expected[-1] + backoff(n))
    assert times == pytest.approx(expected)
    assert [s.headers["Upstash-Retried"] for s in world.delivery.sent] == ["0", "1", "2", "3"]
    assert world.states(message_id) == [
        "CREATED",
        *["ACTIVE", "ERROR", "RETRY"] * 3,
        "ACTIVE",
        "ERROR",
        "FAILED",
    ]
    [entry] = world.engine.dlq_entries(world.user)
    assert entry.message.id == message_id
    assert entry.response.status == 500 and entry.response.body == b"boom"
    assert entry.dlq_id.startswith(f"{ms(expected[-1])}-")
    assert message_id not in world.engine.state(world.user).messages


def test_the_backoff_ladder_is_qstash_default() -> None:
    assert [round(backoff(n), 3) for n in (1, 2, 3)] == [12.182, 148.413, 1808.042]
    assert backoff(10) == 86400.0  # capped at a day


async def test_a_later_success_ends_the_retries(world: World) -> None:
    world.delivery.script(HOOK, status(503), status(200))
    message_id = world.publish()
    await world.scheduler.run_until_idle()
    assert len(world.delivery.sent) == 2
    assert world.states(message_id)[-1] == "DELIVERED"
    assert world.engine.dlq_entries(world.user) == []


async def test_retry_after_and_retry_delay_expressions_set_the_next_attempt(
    world: World,
) -> None:
    world.delivery.script(HOOK, status(429, Retry_After="30"), status(500), status(500))
    world.publish(retries=2, retry_delay=compile_retry_delay("1000 * (1 + retried)"))
    await world.scheduler.run_until_idle()
    # Retry-After wins over the expression; then the expression with retried = 1.
    assert [s.time - T0 for s in world.delivery.sent] == [0, 30, 32]


async def test_no_answer_is_a_failed_attempt(world: World) -> None:
    world.delivery.script(HOOK, Response(None, {}, b"", error="request timed out after 5s"))
    message_id = world.publish(retries=0)
    await world.scheduler.run_until_idle()
    [entry] = world.engine.dlq_entries(world.user)
    assert entry.message.id == message_id
    errors = [e.error for e in world.engine.state(world.user).logs if e.state == "ERROR"]
    assert errors == ["request timed out after 5s"]


async def test_non_retryable_error_goes_straight_to_the_dlq(world: World) -> None:
    world.delivery.script(HOOK, status(489, Upstash_NonRetryable_Error="true"))
    message_id = world.publish(retries=3)
    await world.scheduler.run_until_idle()
    assert len(world.delivery.sent) == 1
    assert world.states(message_id)[-1] == "FAILED"
    assert len(world.engine.dlq_entries(world.user)) == 1


# -- callbacks ---------------------------------------------------------------------------------


async def test_a_callback_follows_a_delivery_with_qstash_body(world: World) -> None:
    world.delivery.script(HOOK, status(201, b"created", X_Answer="yes"))
    message_id = world.publish(b"payload", callback=CallbackConfig(url=CALLBACK))
    await world.scheduler.settle()

    [sent] = world.delivery.to(CALLBACK)
    assert sent.headers["Content-Type"] == "application/json"
    body = json.loads(sent.body)
    assert body["status"] == 201
    assert body["sourceMessageId"] == message_id
    assert base64.b64decode(body["body"]) == b"created"
    assert base64.b64decode(body["sourceBody"]) == b"payload"
    assert body["header"] == {"X-Answer": ["yes"]}
    assert (body["retried"], body["maxRetries"], body["url"]) == (0, 3, HOOK)
    callback = world.message_to(CALLBACK)
    assert callback.kind == "callback"
    assert world.states(callback.id) == ["CREATED", "ACTIVE", "DELIVERED"]


async def test_callbacks_after_every_attempt_and_a_failure_callback_after_the_last(
    world: World,
) -> None:
    world.delivery.script(HOOK, status(500))
    message_id = world.publish(
        retries=1,
        callback=CallbackConfig(url=CALLBACK),
        failure_callback=CallbackConfig(url=FAILURE),
    )
    await world.scheduler.run_until_idle()

    assert [json.loads(s.body)["retried"] for s in world.delivery.to(CALLBACK)] == [0, 1]
    [failure] = world.delivery.to(FAILURE)
    body = json.loads(failure.body)
    [entry] = world.engine.dlq_entries(world.user)
    assert body["sourceMessageId"] == message_id
    assert body["dlqId"] == entry.dlq_id
    assert body["status"] == 500
    # Callback ids derive from the source message: the same on every run.
    ids = {s.headers["Upstash-Message-Id"] for s in world.delivery.sent if s.url != HOOK}
    assert len(ids) == 3 and message_id not in ids


# -- cancel ------------------------------------------------------------------------------------


async def test_cancel_before_delivery_stops_it(world: World) -> None:
    message_id = world.publish(delay=60.0)
    world.engine.cancel(world.user, message_id)
    assert world.states(message_id) == ["CREATED", "CANCEL_REQUESTED", "CANCELED"]
    await world.scheduler.run_until_idle()
    assert world.delivery.sent == []
    with pytest.raises(ApiError) as raised:
        world.engine.get_message(world.user, message_id)
    assert raised.value.status == 404
    with pytest.raises(ApiError):
        world.engine.cancel(world.user, message_id)  # already gone: 404, not a second cancel


async def test_cancel_in_flight_lets_the_attempt_finish_but_never_retries(world: World) -> None:
    world.delivery.hold = asyncio.Event()
    world.delivery.script(HOOK, status(500))
    message_id = world.publish(retries=3)
    await world.delivery.arrived.wait()  # the attempt has left and waits for its answer
    assert world.engine.get_message(world.user, message_id).in_flight
    world.engine.cancel(world.user, message_id)
    world.delivery.hold.set()
    await world.scheduler.run_until_idle()
    assert len(world.delivery.sent) == 1
    assert world.states(message_id) == [
        "CREATED",
        "ACTIVE",
        "CANCEL_REQUESTED",
        "ERROR",
        "CANCELED",
    ]
    assert world.engine.dlq_entries(world.user) == []


# -- dedup, gates, reset -----------------------------------------------------------------------


async def test_deduplication_answers_the_first_message_for_ten_minutes(world: World) -> None:
    first = world.publish(dedup_id="d1")
    assert world.engine.publish_url(
        world.user, HOOK, MessageSpec(dedup_id="d1"), b"again", caller_ip="10.0.0.1"
    ) == {"messageId": first, "deduplicated": True}
    await world.scheduler.advance(600)
    assert world.publish(dedup_id="d1") != first


class HoldAll:
    """A gate that holds every message until the test releases it."""

    def __init__(self) -> None:
        self.held: list[Message] = []
        self.done_for: list[str] = []

    def admit(self, message: Message) -> bool:
        self.held.append(message)
        return False

    def done(self, message: Message) -> None:
        self.done_for.append(message.id)

    def cancelled(self, message: Message) -> None:
        self.held.remove(message)


async def test_a_gate_holds_a_message_until_it_starts_it(world: World) -> None:
    gate = HoldAll()
    world.engine.gates.append(gate)
    message_id = world.publish()
    await world.scheduler.settle()
    assert world.delivery.sent == []
    assert [m.id for m in gate.held] == [message_id]
    world.engine.start(gate.held.pop(), gate)
    await world.scheduler.settle()
    assert len(world.delivery.sent) == 1
    assert gate.done_for == [message_id]


async def test_reset_drops_pending_work_and_state(world: World) -> None:
    world.publish(delay=10.0)
    world.engine.reset()
    await world.scheduler.run_until_idle()
    assert world.delivery.sent == []
    assert list(world.engine.state(world.user).logs) == []
    assert world.engine.state(world.user).messages == {}


async def test_messages_with_the_same_headers_share_one_map(world: World) -> None:
    # A held message costs no header dict of its own when another has the same headers; each
    # still delivers its own (and a different set gets a map of its own).
    json_headers = {"Content-Type": ["application/json"], "X-Tag": ["a", "b"]}
    first = world.publish(b"1", headers=json_headers, delay=60)
    second = world.publish(b"2", headers={k: list(v) for k, v in json_headers.items()}, delay=60)
    other = world.publish(b"3", headers={"Content-Type": ["text/plain"]}, delay=60)
    held = world.engine.state(world.user).messages
    assert held[first].headers is held[second].headers
    assert held[other].headers is not held[first].headers
    json_headers["X-Tag"].append("c")  # the publisher's spec is not the message's map
    assert held[first].headers == {"Content-Type": ["application/json"], "X-Tag": ["a", "b"]}
    await world.scheduler.advance(60)
    sent = [(s.body, s.headers["Content-Type"]) for s in world.delivery.sent]
    assert sent == [(b"1", "application/json"), (b"2", "application/json"), (b"3", "text/plain")]
