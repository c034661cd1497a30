"""Schedules: a stored publish that the one scheduler repeats at each cron fire time.

A schedule holds the parsed publish (spec and body) and at most one timer: the entry for its next
fire time. Firing publishes through the same path as a one-off publish (a URL, a URL group or a
queue), arms the next entry, and remembers the messages it made (`lastScheduleStates`). Paused
schedules have no timer at all, so `run_until_idle` never spins on them.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass, field
from typing import Any

from ..core.engine import Engine
from ..core.errors import ApiError, bad_request, not_found
from ..core.scheduler import Timer
from ..core.state import DELIVERED, Message
from ..core.users import User
from ..parsing.cron import CronError, CronSpec
from ..parsing.publish_headers import MessageSpec
from ..store.base import SCHEDULE
from .destinations import Destinations

__all__ = ["Answer", "Schedule", "Schedules"]

_SCHEDULE_ID = re.compile(r"^[A-Za-z0-9._-]+$")

# lastScheduleStates values, as the SDK's ScheduleState enum names them.
IN_PROGRESS, SUCCESS, FAIL = "IN_PROGRESS", "SUCCESS", "FAIL"

Answer = dict[str, Any] | list[dict[str, Any]]  # what Destinations.publish returns


@dataclass
class Schedule:
    """One cron schedule: what it publishes, where, and its next firing (times in seconds)."""

    id: str
    user: User
    destination: str
    cron: CronSpec
    spec: MessageSpec
    body: bytes
    created_at: float
    caller_ip: str
    order: tuple[int, ...]
    paused: bool = False
    last_time: float | None = None
    next_time: float | None = None
    last_messages: dict[str, Message | None] = field(default_factory=dict)
    error: str | None = None
    timer: Timer | None = None

    @property
    def queue_name(self) -> str | None:
        """The queue its messages go through, if any."""
        return self.spec.queue_name

    @functools.cached_property
    def firing_spec(self) -> MessageSpec:
        """What each firing publishes: a fresh publish, no dedup against the last firing.

        Made once: a schedule's spec does not change (a replace is a new `Schedule`).
        """
        return dataclasses.replace(
            self.spec, cron=None, dedup_id=None, content_dedup=False, not_before=None
        )

    def last_states(self) -> dict[str, str]:
        """Live states of the messages the last firing made (a dedup'd id is IN_PROGRESS)."""
        return {mid: _schedule_state(m) for mid, m in self.last_messages.items()}


def _schedule_state(message: Message | None) -> str:
    if message is None or not message.finished:
        return IN_PROGRESS
    return SUCCESS if message.state == DELIVERED else FAIL


class Schedules:
    """Every user's schedules (one per backend); firings publish through `destinations`."""

    def __init__(self, engine: Engine, destinations: Destinations) -> None:
        self.engine = engine
        self.destinations = destinations
        self._by_user: dict[str, dict[str, Schedule]] = {}

    def reset(self) -> None:
        """Forget every schedule and cancel its timers (a test's reset)."""
        for schedules in self._by_user.values():
            for schedule in schedules.values():
                self._disarm(schedule)
        self._by_user.clear()

    def _of(self, user: User) -> dict[str, Schedule]:
        return self._by_user.setdefault(user.name, {})

    def last_message_ids(self) -> set[str]:
        """The messages of every schedule's last firing (all users): its state points at them."""
        return {
            message_id
            for schedules in self._by_user.values()
            for schedule in schedules.values()
            for message_id in schedule.last_messages
        }

    # -- create, read, delete ---------------------------------------------------------------
    def create(
        self, user: User, destination: str, spec: MessageSpec, body: bytes, *, caller_ip: str
    ) -> Schedule:
        """Create or (same Upstash-Schedule-Id) replace a schedule. Validates before any change."""
        cron = _parse_cron(spec.cron)
        self._check_destination(user, destination, spec, body)
        schedules = self._of(user)
        old = schedules.get(spec.schedule_id) if spec.schedule_id is not None else None
        if spec.schedule_id is not None and not _SCHEDULE_ID.match(spec.schedule_id):
            raise bad_request(
                "Schedule ID is invalid. Schedule IDs can only contain alphanumeric characters, "
                "hyphens, periods, and underscores."
            )
        if old is None and len(schedules) >= user.quota.max_schedules:
            raise ApiError(
                412,
                f"Exceeded the maximum number of schedules allowed: {user.quota.max_schedules} on "
                f"the {user.quota.name} plan",
            )
        eng = self.engine
        schedule = Schedule(
            id=spec.schedule_id or eng.ids.next("schedule", "scd_", 28),
            user=user,
            destination=destination,
            cron=cron,
            spec=dataclasses.replace(spec, schedule_id=None),
            body=body,
            # Replacing keeps what the create call cannot express: creation time, paused state.
            created_at=old.created_at if old else eng.clock.now(),
            caller_ip=caller_ip,
            order=old.order if old else (eng.ids.counter("order"),),
            paused=old.paused if old else False,
        )
        if old is not None:
            self._disarm(old)
        schedules[schedule.id] = schedule
        if not schedule.paused:
            self._arm(schedule, eng.clock.now())
        self._saved(schedule)
        return schedule

    def _saved(self, schedule: Schedule) -> None:
        self.engine.store.put(SCHEDULE, schedule.user.name, schedule.id, schedule)

    def restore(self, schedule: Schedule) -> None:
        """Add a schedule loaded from a store, armed at its saved next fire time.

        A fire time that passed while the emulator was down fires at once, once (then `_fire`
        goes on from the next cron time after now): missed firings are caught up by one
        firing, not replayed.
        """
        self._of(schedule.user)[schedule.id] = schedule
        if not schedule.paused:
            due = schedule.next_time
            if due is None:
                due = schedule.cron.next_after(self.engine.clock.now())
            self._arm_at(schedule, due)

    def _check_destination(
        self, user: User, destination: str, spec: MessageSpec, body: bytes
    ) -> None:
        try:
            # With the spec, a claimed destination (api/llm) checks its message now, not at firing.
            self.destinations.plan(
                user, destination, queue_name=spec.queue_name, spec=spec, body=body
            )
        except ApiError as exc:
            # A URL group may be created after its schedule; a firing without it records the
            # error on the schedule (`error`) instead.
            if exc.status != 404:
                raise

    def get(self, user: User, schedule_id: str) -> Schedule:
        """The user's schedule `schedule_id`.

        Raises:
            ApiError: 404 for an unknown schedule.
        """
        schedule = self._of(user).get(schedule_id)
        if schedule is None:
            raise not_found(f"schedule {schedule_id} not found")
        return schedule

    def list(self, user: User) -> list[Schedule]:
        """The user's schedules, oldest first."""
        return sorted(self._of(user).values(), key=lambda s: (s.created_at, s.order, s.id))

    def delete(self, user: User, schedule_id: str) -> None:
        """Stops future firings; messages already published are delivered as usual."""
        schedule = self.get(user, schedule_id)
        self._disarm(schedule)
        del self._of(user)[schedule_id]
        self.engine.store.delete(SCHEDULE, user.name, schedule_id)

    def pause(self, user: User, schedule_id: str) -> None:
        """Stop firing (until `resume`)."""
        schedule = self.get(user, schedule_id)
        schedule.paused = True
        self._disarm(schedule)
        self._saved(schedule)

    def resume(self, user: User, schedule_id: str) -> None:
        """Fires again from the next cron time after now (missed times are not caught up)."""
        schedule = self.get(user, schedule_id)
        if schedule.paused:
            schedule.paused = False
            self._arm(schedule, self.engine.clock.now())
            self._saved(schedule)

    def trigger(self, user: User, schedule_id: str) -> Answer:
        """Fire the schedule now, once, outside its cron times (paused or not).

        Its next cron firing stays as it was; the firing is recorded like any
        (`lastScheduleTime`, `lastScheduleStates`).
        """
        schedule = self.get(user, schedule_id)
        result = self._publish(schedule)  # a failing publish answers its error, state untouched
        schedule.last_time = self.engine.clock.now()
        schedule.error = None
        messages = self.engine.state(schedule.user).messages
        schedule.last_messages = {mid: messages.get(mid) for mid in _message_ids(result)}
        self._saved(schedule)
        return result

    # -- firing -----------------------------------------------------------------------------
    def _arm(self, schedule: Schedule, after: float) -> None:
        self._arm_at(schedule, schedule.cron.next_after(after))

    def _arm_at(self, schedule: Schedule, due: float) -> None:
        schedule.next_time = due

        async def fire() -> None:
            # A replaced, deleted or paused schedule has dropped this timer.
            if schedule.timer is timer:
                schedule.timer = None
                self._fire(schedule, due)

        timer = self.engine.scheduler.call_at(
            due, fire, schedule.order, what=f"schedule {schedule.id}"
        )
        schedule.timer = timer

    def _disarm(self, schedule: Schedule) -> None:
        if schedule.timer is not None:
            schedule.timer.cancel()
            schedule.timer = None
        schedule.next_time = None

    def _fire(self, schedule: Schedule, due: float) -> None:
        now = self.engine.clock.now()
        # Arm first so a failing publish never stops the schedule; a late real clock skips
        # missed times rather than bursting to catch up.
        self._arm(schedule, max(due, now))
        schedule.last_time = due
        try:
            result = self._publish(schedule)
        except ApiError as exc:
            schedule.error = exc.message
            schedule.last_messages = {}
            self._saved(schedule)
            return
        schedule.error = None
        messages = self.engine.state(schedule.user).messages
        schedule.last_messages = {mid: messages.get(mid) for mid in _message_ids(result)}
        self._saved(schedule)

    def _publish(self, schedule: Schedule) -> Answer:
        return self.destinations.publish(
            schedule.user,
            schedule.destination,
            schedule.firing_spec,
            schedule.body,
            caller_ip=schedule.caller_ip,
            queue_name=schedule.queue_name,
            schedule_id=schedule.id,
        )


def _parse_cron(expr: str | None) -> CronSpec:
    if expr is None or not expr.strip():
        raise bad_request("Upstash-Cron header is required to create a schedule")
    try:
        return CronSpec.parse(expr)
    except CronError as exc:
        raise bad_request(str(exc)) from None


def _message_ids(result: Answer) -> list[str]:
    """Message ids in a publish answer: one object, or a list of them (URL groups)."""
    items = result if isinstance(result, list) else [result]
    return [str(item["messageId"]) for item in items]
