"""QStash schedule cron expressions.

Five standard fields (minute hour day-of-month month day-of-week), optionally
prefixed with `CRON_TZ=<IANA zone>`; the default zone is UTC. Field
expansion and iteration come from `croniter`; this module adds the
QStash-specific validation (exactly five fields, no croniter extensions such as
`L`, `#`, `H` or `@hourly`), a direct search for fixed-offset zones (UTC)
built on croniter's expanded fields, and an iterator cache for chained
`next_after` calls in other zones.

DST behaviour comes from croniter: a wall-clock time skipped by a spring-forward
transition fires once, at the first instant after the gap (as in ISC cron); a
wall-clock time repeated by a fall-back transition fires at each occurrence.
Day-of-month and day-of-week combine with OR when both are restricted (Vixie cron).
"""

from __future__ import annotations

import math
import re
import threading
from bisect import bisect_left
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

__all__ = ["CronError", "CronSpec"]

_TZ_PREFIX = "CRON_TZ="

# Per-field syntax: comma-separated items of "*", "?", N, N-M or a 3-letter name
# (JAN, MON, ...), each optionally followed by "/step". Anything else -- including
# croniter extensions such as L, W, # and H -- is rejected before croniter sees it.
_ITEM_RE = re.compile(
    r"(?:(?P<any>[*?])|(?P<start>[0-9]+|[A-Za-z]{3})(?:-(?P<end>[0-9]+|[A-Za-z]{3}))?)"
    r"(?:/(?P<step>[0-9]+))?",
    re.ASCII,
)

_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]
    question_mark: bool  # "?" is only meaningful in the two day fields


_FIELDS = (
    _Field("minute", 0, 59, {}, False),
    _Field("hour", 0, 23, {}, False),
    _Field("day-of-month", 1, 31, {}, True),
    _Field("month", 1, 12, {n: i for i, n in enumerate(_MONTH_NAMES, start=1)}, False),
    # 7 is Sunday as well, as in Vixie cron.
    _Field("day-of-week", 0, 7, {n: i for i, n in enumerate(_DOW_NAMES)}, True),
)

# A chained call that is at most this many fire times ahead of the cached iterator
# advances it; anything further away rebuilds from scratch (a rebuild costs about as
# much as a handful of croniter steps).
_MAX_CATCH_UP_STEPS = 4

# Zones whose UTC offset never changes. Their schedules skip croniter at run time
# (croniter costs ~60 us per step, the fixed-offset search a few us) -- this covers
# the default UTC, i.e. almost every schedule.
_FIXED_OFFSET_ZONES = frozenset(
    f"{prefix}{name}"
    for prefix in ("", "Etc/")
    for name in ("UTC", "UCT", "GMT", "GMT0", "GMT+0", "GMT-0", "Universal", "Zulu", "Greenwich")
)
_ETC_GMT_RE = re.compile(r"Etc/GMT[+-][0-9]{1,2}")
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# Enough calendar steps to find a Feb 29 across a skipped leap year (e.g. 2096 -> 2104).
_MAX_DAY_STEPS = 10 * 366


class CronError(ValueError):
    """Raised for an invalid schedule cron expression."""


def _load_zone(name: str, expr: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise CronError(f'invalid cron "{expr}": unknown time zone "{name}"') from exc


def _value(spec: _Field, token: str) -> int | None:
    if token.isdigit():
        number = int(token)
        return number if spec.low <= number <= spec.high else None
    return spec.names.get(token.lower())


def _field_problem(spec: _Field, part: str) -> str | None:
    """Why `part` is not a valid value for `spec`, or None if it is fine."""
    for item in part.split(","):
        match = _ITEM_RE.fullmatch(item)
        if match is None:
            return f"cannot parse {item!r}"
        if match["any"] == "?" and not spec.question_mark:
            return "'?' is only allowed in the day-of-month and day-of-week fields"
        if match["step"] is not None and int(match["step"]) == 0:
            return "step must be at least 1"
        bounds: list[int] = []
        for token in (match["start"], match["end"]):
            if token is None:
                continue
            value = _value(spec, token)
            if value is None:
                allowed = f"{spec.low}-{spec.high}"
                if spec.names:
                    names = list(spec.names)
                    allowed += f" or {names[0]}-{names[-1]}"
                return f"{token!r} is not allowed (expected {allowed})"
            bounds.append(value)
        if len(bounds) == 2 and bounds[0] > bounds[1]:
            return f"range {item!r} is reversed"
    return None


class _FixedOffsetSchedule:
    """Next-fire search for a zone without DST, on croniter's own expanded field sets."""

    def __init__(self, fields: str, offset_seconds: int) -> None:
        expanded, _ = croniter.expand(fields)
        minute, hour, dom, month, dow = expanded
        self._offset = offset_seconds
        self._minutes = sorted(int(v) for v in minute) if minute[0] != "*" else list(range(60))
        self._hours = sorted(int(v) for v in hour) if hour[0] != "*" else list(range(24))
        self._doms = None if dom[0] == "*" else frozenset(int(v) for v in dom)
        self._months = None if month[0] == "*" else frozenset(int(v) for v in month)
        self._dows = None if dow[0] == "*" else frozenset(int(v) % 7 for v in dow)
        # croniter (like Vixie cron) ORs the day fields when both are restricted.
        self._day_or = self._doms is not None and self._dows is not None

    def _day_matches(self, day: date) -> bool:
        dom_ok = self._doms is None or day.day in self._doms
        dow_ok = self._dows is None or (day.weekday() + 1) % 7 in self._dows
        return (dom_ok or dow_ok) if self._day_or else (dom_ok and dow_ok)

    def _first_time_from(self, hour: int, minute: int) -> tuple[int, int] | None:
        i = bisect_left(self._hours, hour)
        if i < len(self._hours) and self._hours[i] == hour:
            j = bisect_left(self._minutes, minute)
            if j < len(self._minutes):
                return hour, self._minutes[j]
            i += 1
        if i < len(self._hours):
            return self._hours[i], self._minutes[0]
        return None

    def next_after(self, ts: float) -> float:
        # First whole wall-clock minute strictly after ts, as minutes since the epoch.
        start_minute = (math.floor(ts) + self._offset) // 60 + 1
        days, minute_of_day = divmod(start_minute, 1440)
        hour, minute = divmod(minute_of_day, 60)
        day = date.fromordinal(_EPOCH_ORDINAL + days)
        for _ in range(_MAX_DAY_STEPS):
            if self._months is not None and day.month not in self._months:
                # Jump to the first of the next month.
                day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
                hour = minute = 0
                continue
            if self._day_matches(day):
                found = self._first_time_from(hour, minute)
                if found is not None:
                    wall_minutes = (day.toordinal() - _EPOCH_ORDINAL) * 1440
                    wall_minutes += found[0] * 60 + found[1]
                    return float(wall_minutes * 60 - self._offset)
            day += timedelta(days=1)
            hour = minute = 0
        raise CronError("no fire time found within ten years")


class CronSpec:
    """A parsed cron expression; use `parse` to construct."""

    __slots__ = (
        "_fixed",
        "_iter",
        "_lock",
        "_window_hi",
        "_window_lo",
        "_zone",
        "expr",
        "fields",
        "tz",
    )

    expr: str
    fields: str
    tz: str

    def __init__(self, expr: str, fields: str, tz: str, zone: ZoneInfo) -> None:
        self.expr = expr
        self.fields = fields
        self.tz = tz
        self._zone = zone
        # Cache for chained calls: there is no fire time in (_window_lo, _window_hi),
        # _window_hi is a fire time and _iter's last result is _window_hi.
        self._lock = threading.Lock()
        self._iter: croniter | None = None
        self._window_lo = math.inf
        self._window_hi = math.inf
        self._fixed: _FixedOffsetSchedule | None = None
        if tz in _FIXED_OFFSET_ZONES or _ETC_GMT_RE.fullmatch(tz):
            offset = zone.utcoffset(datetime(2000, 1, 1))
            assert offset is not None
            self._fixed = _FixedOffsetSchedule(fields, int(offset.total_seconds()))

    @classmethod
    def parse(cls, expr: str) -> CronSpec:
        """Parse `"[CRON_TZ=<zone> ]m h dom mon dow"`; raises `CronError`."""
        text = expr.strip()
        tz_name = "UTC"
        if text.startswith(_TZ_PREFIX):
            prefix, *rest = text.split(None, 1)
            text = rest[0] if rest else ""
            tz_name = prefix[len(_TZ_PREFIX) :]
            if not tz_name:
                raise CronError(f'invalid cron "{expr}": empty CRON_TZ time zone')
        zone = _load_zone(tz_name, expr)

        parts = text.split()
        if len(parts) != 5:
            raise CronError(
                f'invalid cron "{expr}": expected 5 fields '
                f"(minute hour day-of-month month day-of-week), got {len(parts)}"
            )
        for spec, part in zip(_FIELDS, parts, strict=True):
            problem = _field_problem(spec, part)
            if problem is not None:
                raise CronError(f'invalid cron "{expr}": {spec.name} field "{part}": {problem}')
        fields = " ".join(parts)

        try:
            # Stepping once also catches expressions that never fire, e.g. "0 0 30 2 *".
            croniter(fields, datetime(2000, 1, 1, tzinfo=zone)).get_next(float)
        except CroniterBadDateError as exc:
            raise CronError(f'invalid cron "{expr}": never matches a calendar date') from exc
        except (ValueError, KeyError, IndexError) as exc:  # CroniterError is a ValueError
            raise CronError(f'invalid cron "{expr}": {exc}') from exc
        return cls(expr, fields, tz_name, zone)

    def next_after(self, ts: float) -> float:
        """Next fire time strictly after Unix time `ts`, as Unix seconds.

        Evaluated in the spec's time zone. Fixed-offset zones (UTC, the default) use a
        direct search; other zones use croniter, and calls chained on the previous result
        (the scheduler's common pattern) reuse a cached iterator and cost one step each.
        Raises `CronError` only for a non-finite or out-of-range `ts`.
        """
        if not math.isfinite(ts):
            raise CronError(f"cannot compute next fire time after {ts!r}")
        if self._fixed is not None:
            try:
                return self._fixed.next_after(ts)
            except CronError:
                raise
            except (OverflowError, ValueError) as exc:  # beyond datetime's year range
                raise CronError(f"cannot compute next fire time after {ts!r}: {exc}") from exc
        with self._lock:
            if self._window_lo <= ts < self._window_hi:
                return self._window_hi
            lo, hi = self._window_lo, self._window_hi
            # Step only when ts is likely a few fire times ahead (judged by the last gap).
            if self._iter is not None and hi <= ts < hi + _MAX_CATCH_UP_STEPS * (hi - lo):
                for _ in range(_MAX_CATCH_UP_STEPS):
                    self._step()
                    if self._window_lo <= ts < self._window_hi:
                        return self._window_hi
            return self._restart(ts)

    def _step(self) -> None:
        assert self._iter is not None
        nxt = self._next_from_iter(self._iter)
        self._window_lo, self._window_hi = self._window_hi, nxt

    def _restart(self, ts: float) -> float:
        # Fire times are whole minutes, so the next one after ts equals the next one after
        # floor(ts); flooring also stops datetime's microsecond rounding from turning
        # 59.9999999 into 60.0 and skipping a fire time.
        start = float(math.floor(ts))
        try:
            it = croniter(self.fields, datetime.fromtimestamp(start, tz=self._zone))
        except (OverflowError, OSError, ValueError) as exc:
            self._iter = None
            raise CronError(f"cannot compute next fire time after {ts!r}: {exc}") from exc
        self._iter = None  # stays unset if the step below raises
        nxt = self._next_from_iter(it)
        self._iter = it
        self._window_lo, self._window_hi = ts, nxt
        return nxt

    def _next_from_iter(self, it: croniter) -> float:
        try:
            return float(it.get_next(float))
        except (CroniterError, OverflowError, ValueError) as exc:
            self._iter = None
            self._window_lo = self._window_hi = math.inf
            raise CronError(f'no fire time found for cron "{self.expr}": {exc}') from exc

    def __repr__(self) -> str:
        return f"CronSpec({self.expr!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CronSpec):
            return NotImplemented
        return (self.fields, self.tz) == (other.fields, other.tz)

    def __hash__(self) -> int:
        return hash((self.fields, self.tz))
