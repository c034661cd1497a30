"""The object a test gets from the `qstash` fixture.

It holds the emulator, its time, capture URLs, and queries and assertions over what was
delivered. Every query is one sync point on the emulator's loop: time catches up with
freezegun, work due now finishes, then the records are copied there (never read while the
loop writes them). Sync methods block the calling thread; in async tests use the `a*`
twins, which await the emulator's loop from any event loop (a destination served by the
test's own loop keeps running while they wait).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from qstash_emulator import Emulator
from qstash_emulator.controls.captures import Captured, ReplyLike, make_reply
from qstash_emulator.controls.captures import url as capture_url
from qstash_emulator.core.scheduler import IDLE_HORIZON, IDLE_MAX_STEPS
from qstash_emulator.core.users import User

from .assertions import (
    LLMQuery,
    Pending,
    Query,
    Situation,
    count_text,
    failure,
    llm_failure,
    url_of,
)
from .clients import Clients
from .config import Settings
from .records import DeliveredMessage
from .server import Server
from .workflows import WorkflowHelpers

if TYPE_CHECKING:
    from qstash import AsyncQStash, QStash, Receiver

__all__ = ["CaptureHandle", "QStashHarness"]

_T = TypeVar("_T")
__tracebackhide__ = True  # failures point at the test's line, not at this module


class CaptureHandle:
    """A built-in capture URL: records what is delivered to it, answers a chosen reply.

    `url` (and any sub-path of it, see `url_for`) is a real HTTP endpoint of the emulator.
    """

    def __init__(self, harness: QStashHarness, name: str) -> None:
        self._harness = harness
        self.name = name
        self.url = capture_url(harness.url, name)

    def url_for(self, path: str = "") -> str:
        """A URL under this capture (recorded here too), e.g. `url_for("/orders?x=1")`."""
        return self.url + ("/" + path.lstrip("/") if path else "")

    def respond(
        self,
        status: int = 200,
        body: bytes | str | Any = b"",
        headers: Mapping[str, str] | None = None,
    ) -> CaptureHandle:
        """Answer every request (after any queued sequence) with this reply.

        A non-bytes, non-str body is sent as JSON.
        """
        reply = make_reply(status=status, body=body, headers=headers)
        self._harness.server.ready()
        self._harness.server.captures.respond(self.name, reply)
        return self

    def respond_sequence(self, replies: Iterable[ReplyLike]) -> CaptureHandle:
        """Answer the next requests with these, one each, in order.

        Each is a status, a `Reply` or a {status, body, headers} mapping; after them the
        `respond` reply (default 200) answers.
        """
        self._harness.server.ready()
        self._harness.server.captures.respond(self.name, sequence=list(replies))
        return self

    @property
    def requests(self) -> list[Captured]:
        """What arrived so far (after a sync point: work due now has finished)."""
        self._harness.settle()
        return self._harness.server.captures.requests(self.name)

    async def arequests(self) -> list[Captured]:
        """What arrived so far; the async twin of `requests`."""
        await self._harness.asettle()
        return self._harness.server.captures.requests(self.name)

    @property
    def last(self) -> Captured | None:
        """The latest request, or None."""
        found = self.requests
        return found[-1] if found else None

    def __len__(self) -> int:
        return len(self.requests)

    def __repr__(self) -> str:
        return f"<CaptureHandle {self.url}>"


class QStashHarness(WorkflowHelpers):
    """A QStash emulator for one test, with time control and delivery assertions."""

    def __init__(self, server: Server, settings: Settings, clients: Clients) -> None:
        self.server = server
        self.settings = settings
        self._clients = clients
        self._names = itertools.count(1)
        self._emu = server.emulator  # internal use: state is read on its loop, or after ready()

    @property
    def started(self) -> float:
        """The emulator's clock when the test began."""
        self.server.ready()
        return self.server.started

    # -- identity and env ---------------------------------------------------------------------
    @property
    def emulator(self) -> Emulator:
        """The `qstash_emulator.Emulator` itself (its state is this test's from here on)."""
        self.server.ready()
        return self._emu

    @property
    def url(self) -> str:
        """The emulator's base URL (QSTASH_URL)."""
        return self._emu.url

    @property
    def token(self) -> str:
        """The default user's QStash token."""
        return self._emu.token

    @property
    def user(self) -> User:
        """The default user."""
        return self._emu.user

    def env(self, user: str | User | None = None) -> dict[str, str]:
        """QSTASH_URL, QSTASH_TOKEN and both signing keys.

        The fixture sets the default user's in os.environ for the test's duration.
        """
        self.server.ready()
        return self._emu.env(user)

    # -- SDK clients --------------------------------------------------------------------------
    def _who(self, user: str | User | None) -> User:
        if user is None:
            return self.user
        return user if isinstance(user, User) else self._emu.users[user]

    def client(self, user: str | User | None = None) -> QStash:
        """The official sync `QStash` client for a user (default: the default user)."""
        return self._clients.sync(self._who(user).token, self.url)

    def async_client(self, user: str | User | None = None) -> AsyncQStash:
        """The official `AsyncQStash` client for a user; works in any event loop scope."""
        return self._clients.async_(self._who(user).token, self.url)

    def receiver(self, user: str | User | None = None) -> Receiver:
        """The official `Receiver` with the user's current keys."""
        if user is None:  # the keys every reset restores: no need to wait for the reset
            env = self.server.default_env
            return self._clients.receiver(
                env["QSTASH_CURRENT_SIGNING_KEY"], env["QSTASH_NEXT_SIGNING_KEY"]
            )
        self.server.ready()
        who = self._who(user)
        return self._clients.receiver(who.current_signing_key, who.next_signing_key)

    # -- capture URLs -------------------------------------------------------------------------
    def capture(
        self,
        name: str | None = None,
        *,
        status: int | None = None,
        body: bytes | str | Any = None,
        headers: Mapping[str, str] | None = None,
        sequence: Iterable[ReplyLike] | None = None,
    ) -> CaptureHandle:
        """A capture URL (`{url}/__capture/{name}`); without a name one is made up."""
        handle = CaptureHandle(self, name or f"capture-{next(self._names)}")
        if status is not None or body is not None or headers is not None:
            handle.respond(
                200 if status is None else status, b"" if body is None else body, headers
            )
        if sequence is not None:
            handle.respond_sequence(sequence)
        return handle

    # -- time ---------------------------------------------------------------------------------
    def _run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        self.server.ready()
        return self._emu.call(coro)

    async def _arun(self, coro: Coroutine[Any, Any, _T]) -> _T:
        self.server.ready()
        return await self._emu.acall(coro)

    @property
    def now(self) -> float:
        """The emulator's clock (Unix seconds); under freezegun, the frozen time."""
        self.server.ready()
        return self._emu.clock.now()

    @property
    def auto_advance(self) -> bool:
        """Whether idle virtual time is skipped while the test waits for a delivery.

        Applies to `wait_for` and `assert_delivered`. Off by default; the marker and
        --qstash-auto-advance set it.
        """
        return self._emu.auto_advance

    @auto_advance.setter
    def auto_advance(self, value: bool) -> None:
        self._emu.auto_advance = value

    def advance(self, by: float | str) -> None:
        """Move virtual time forward ("90s", "1h", seconds); what falls due runs in order."""
        self._run(self._emu.aadvance(by))

    async def aadvance(self, by: float | str) -> None:
        """Move virtual time forward; the async twin of `advance`, usable from any event loop."""
        await self._arun(self._emu.aadvance(by))

    def run_until_idle(
        self, limit: float | str = IDLE_HORIZON, max_steps: int = IDLE_MAX_STEPS
    ) -> None:
        """Jump from due work to due work until none is left.

        Raises NotIdleError naming what kept it busy (a cron schedule never is idle) past
        `limit` or `max_steps` jumps.
        """
        self._run(self._emu.arun_until_idle(limit, max_steps))

    async def arun_until_idle(
        self, limit: float | str = IDLE_HORIZON, max_steps: int = IDLE_MAX_STEPS
    ) -> None:
        """Run due work until none is left; the async twin of `run_until_idle`."""
        await self._arun(self._emu.arun_until_idle(limit, max_steps))

    def settle(self) -> None:
        """Let work due now finish, without moving time (catches up with freezegun)."""
        self._run(self._emu.asettle())

    async def asettle(self) -> None:
        """Let work due now finish; the async twin of `settle`."""
        await self._arun(self._emu.asettle())

    # -- the sync point -----------------------------------------------------------------------
    def _situation(self) -> Situation:
        """Runs on the emulator's loop: a consistent copy of what happened."""
        emu = self._emu
        now = emu.clock.now()
        deliveries = [DeliveredMessage(r, self.server.verdict(r), emu.url) for r in emu.deliveries]
        pending = [
            Pending(
                m.id,
                m.url,
                m.timer.due if m.timer is not None else m.not_before,
                m.state,
                m.retried,
            )
            for m in emu.pending_messages
        ]
        pending.sort(key=lambda p: (p.due, p.message_id))
        start = self.server.started
        if now < start:  # a freeze_time started a timeline before ours
            start = min([d.time for d in deliveries] + [now])
        return Situation(
            deliveries,
            pending,
            [repr(e) for e in emu.errors],
            now,
            start,
            emu.auto_advance,
            emu.clock.virtual,
        )

    async def _look(
        self, query: Query | None, wait_for: int | None, timeout: float | str | None
    ) -> Situation:
        emu = self._emu
        if query is not None and wait_for is not None:

            def done() -> bool:
                count = 0
                for record in emu.deliveries:
                    if record.response is None:
                        continue  # still in flight
                    d = DeliveredMessage(record, self.server.verdict(record), emu.url)
                    if query.matches(d):
                        count += 1
                return count >= wait_for

            await emu.await_until(done, timeout)
        else:
            await emu.asettle()
        return self._situation()

    def _query(self, url: Any, filters: Mapping[str, Any]) -> Query:
        body = filters.get("body")
        if body is not None and not isinstance(body, (str, bytes)):  # body={"a": 1}: JSON
            filters = {**filters, "json": body, "body": None}
        return Query(url=url_of(url), **filters)

    # -- queries ------------------------------------------------------------------------------
    def deliveries(self, url: Any = None, **filters: Any) -> list[DeliveredMessage]:
        """Delivery attempts so far, oldest first, each with its signature verdict.

        Filters: url (string, re.Pattern or capture), message_id, schedule_id, queue,
        url_group, kind ("message", "callback", "failure_callback"), user, method,
        header (name, or (name, value)), headers ({name: value}), body (exact text or bytes;
        a dict or list compares as JSON), json (parsed equality), contains (substring),
        status (the destination's answer), retried, where (predicate on the delivery).
        """
        query = self._query(url, filters)
        situation = self._run(self._look(None, None, None))
        return [d for d in situation.deliveries if query.matches(d)]

    async def adeliveries(self, url: Any = None, **filters: Any) -> list[DeliveredMessage]:
        """The deliveries matching the filters; the async twin of `deliveries`."""
        query = self._query(url, filters)
        situation = await self._arun(self._look(None, None, None))
        return [d for d in situation.deliveries if query.matches(d)]

    def snapshot(self, url: Any = None, **filters: Any) -> list[dict[str, Any]]:
        """Deliveries as plain dicts that are identical on every run with the same seed."""
        return [d.snapshot() for d in self.deliveries(url, **filters)]

    def callbacks(self, url: Any = None, **filters: Any) -> list[DeliveredMessage]:
        """Callback deliveries (kind="callback"; pass kind="failure_callback" for those)."""
        filters.setdefault("kind", "callback")
        return self.deliveries(url, **filters)

    # -- waiting ------------------------------------------------------------------------------
    def wait_for(
        self,
        url: Any = None,
        *,
        times: int = 1,
        timeout: float | str | None = None,
        **filters: Any,
    ) -> list[DeliveredMessage]:
        """Wait until `times` deliveries match and return the matches.

        With auto_advance, idle virtual time is skipped (up to `timeout` virtual seconds, default
        a year); on the real clock it waits up to `timeout` seconds (default 10); otherwise it only
        lets work due now finish.
        """
        query = self._query(url, filters)
        situation = self._run(self._look(query, times, timeout))
        return self._waited(query, times, situation)

    async def await_for(
        self,
        url: Any = None,
        *,
        times: int = 1,
        timeout: float | str | None = None,
        **filters: Any,
    ) -> list[DeliveredMessage]:
        """Wait until `times` deliveries match; the async twin of `wait_for`."""
        query = self._query(url, filters)
        situation = await self._arun(self._look(query, times, timeout))
        return self._waited(query, times, situation)

    def _waited(self, query: Query, times: int, situation: Situation) -> list[DeliveredMessage]:
        found = [d for d in situation.deliveries if query.matches(d)]
        if len(found) < times:
            raise AssertionError(
                failure(
                    f"wait_for: expected {count_text(times, least=True)}, found {len(found)}",
                    query,
                    found,
                    situation,
                )
            )
        return found

    # -- assertions ---------------------------------------------------------------------------
    def assert_delivered(
        self,
        url: Any = None,
        *,
        times: int | None = None,
        signed: bool = True,
        timeout: float | str | None = None,
        **filters: Any,
    ) -> list[DeliveredMessage]:
        """Assert deliveries matching the filters (see `deliveries`) were made; returns them.

        At least one, or exactly `times`; each with a valid signature unless signed=False. With
        auto_advance (or on the real clock) it first waits for them.
        """
        query = self._query(url, filters)
        situation = self._run(self._look(query, 1 if times is None else times, timeout))
        return self._check_delivered(query, times, signed, situation)

    async def aassert_delivered(
        self,
        url: Any = None,
        *,
        times: int | None = None,
        signed: bool = True,
        timeout: float | str | None = None,
        **filters: Any,
    ) -> list[DeliveredMessage]:
        """The async twin of `assert_delivered`."""
        query = self._query(url, filters)
        situation = await self._arun(self._look(query, 1 if times is None else times, timeout))
        return self._check_delivered(query, times, signed, situation)

    def _check_delivered(
        self, query: Query, times: int | None, signed: bool, situation: Situation
    ) -> list[DeliveredMessage]:
        found = [d for d in situation.deliveries if query.matches(d)]
        if (times is None and not found) or (times is not None and len(found) != times):
            raise AssertionError(
                failure(
                    f"assert_delivered: expected {count_text(times)}, found {len(found)}",
                    query,
                    found,
                    situation,
                )
            )
        if signed:
            bad = [d for d in found if not d.signed]
            if bad:
                details = "\n".join(f"  {d.describe()}: {d.signature_error}" for d in bad)
                raise AssertionError(
                    f"assert_delivered: {len(bad)} matching deliver"
                    f"{'y has' if len(bad) == 1 else 'ies have'} no valid signature\n{details}"
                )
        return found

    def assert_not_delivered(self, url: Any = None, **filters: Any) -> None:
        """Assert nothing matching the filters was delivered (up to now; time does not move)."""
        query = self._query(url, filters)
        self._check_not_delivered(query, self._run(self._look(None, None, None)))

    async def aassert_not_delivered(self, url: Any = None, **filters: Any) -> None:
        """The async twin of `assert_not_delivered`."""
        query = self._query(url, filters)
        situation = await self._arun(self._look(None, None, None))
        self._check_not_delivered(query, situation)

    def _check_not_delivered(self, query: Query, situation: Situation) -> None:
        found = [d for d in situation.deliveries if query.matches(d)]
        if found:
            raise AssertionError(
                failure(
                    f"assert_not_delivered: expected none, found {len(found)}",
                    query,
                    found,
                    situation,
                )
            )

    def assert_callback(
        self,
        url: Any = None,
        *,
        failure_callback: bool = False,
        source_message_id: str | None = None,
        source_status: int | None = None,
        times: int | None = None,
        **filters: Any,
    ) -> list[DeliveredMessage]:
        """Assert a (failure) callback was delivered.

        Optionally for a given source message and the status its destination answered (fields of
        the callback's JSON body).
        """
        kind = "failure_callback" if failure_callback else "callback"
        predicate = filters.pop("where", None)

        def about_source(d: DeliveredMessage) -> bool:
            try:
                data = d.json()
            except ValueError:
                return False
            if source_message_id is not None and data.get("sourceMessageId") != source_message_id:
                return False
            if source_status is not None and data.get("status") != source_status:
                return False
            return predicate is None or bool(predicate(d))

        about_source.__name__ = f"sourceMessageId={source_message_id!r}, status={source_status!r}"
        needs_where = source_message_id is not None or source_status is not None or predicate
        return self.assert_delivered(
            url, kind=kind, times=times, where=about_source if needs_where else None, **filters
        )

    # -- LLM ----------------------------------------------------------------------------------
    @property
    def llm(self) -> Any:
        """The emulator's scripted LLM engine (reply(...), load_script(...), calls)."""
        self.server.ready()
        llm = getattr(self._emu, "llm", None)
        if llm is None:
            raise RuntimeError("this emulator has no LLM engine (Emulator.llm) yet")
        return llm

    async def _llm_calls(self, llm: Any) -> list[Any]:
        await self._emu.scheduler.catch_up()
        return list(llm.calls)

    def llm_calls(self, **filters: Any) -> list[Any]:
        """Recorded LLM calls matching model / contains / endpoint / provider / where."""
        query = LLMQuery(**filters)
        return [c for c in self._run(self._llm_calls(self.llm)) if not query.mismatches(c)]

    def assert_llm_called(self, *, times: int | None = None, **filters: Any) -> list[Any]:
        """Assert LLM calls matching the filters were made: at least one, or exactly `times`."""
        query = LLMQuery(**filters)
        calls = self._run(self._llm_calls(self.llm))
        found = [c for c in calls if not query.mismatches(c)]
        if (times is None and not found) or (times is not None and len(found) != times):
            expected = count_text(times, "call", "calls")
            title = f"assert_llm_called: expected {expected}, found {len(found)}"
            raise AssertionError(llm_failure(title, query, found, calls))
        return found

    def assert_llm_not_called(self, **filters: Any) -> None:
        """Assert the LLM engine answered no call matching the filters (see `LLMQuery`)."""
        query = LLMQuery(**filters)
        calls = self._run(self._llm_calls(self.llm))
        found = [c for c in calls if not query.mismatches(c)]
        if found:
            raise AssertionError(
                llm_failure(
                    f"assert_llm_not_called: expected none, found {len(found)}",
                    query,
                    found,
                    calls,
                )
            )

    # -- debugging ----------------------------------------------------------------------------
    @property
    def log(self) -> list[str]:
        """The request and delivery log of this test (when logging is on)."""
        self.server.ready()
        return self.server.log_text().splitlines()

    def dump(self) -> str:
        """Every delivery so far as JSON lines (for a quick print while debugging)."""
        return "\n".join(json.dumps(d.snapshot()) for d in self.deliveries())

    def __repr__(self) -> str:
        return f"<QStashHarness {self.url}>"
