from __future__ import annotations

import math
import random
from datetime import date, datetime, timedelta, timezone, tzinfo
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from qstash_emulator.parsing.cron import CronError, CronSpec

UTC = timezone.utc
NEW_YORK = ZoneInfo("America/New_York")


def _ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0, tz: tzinfo = UTC) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=tz).timestamp()


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _chain(spec: CronSpec, start: float, end: float) -> list[float]:
    """All fire times in (start, end), by chaining next_after on its own results."""
    out: list[float] = []
    t = spec.next_after(start)
    while t < end:
        out.append(t)
        t = spec.next_after(t)
    return out


# --- parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "fields", "tz"),
    [
        ("* * * * *", "* * * * *", "UTC"),
        ("*/5 * * * *", "*/5 * * * *", "UTC"),
        ("  0   9 * *   1-5 ", "0 9 * * 1-5", "UTC"),
        ("0\t9\t*\t*\t*", "0 9 * * *", "UTC"),
        ("CRON_TZ=America/New_York 0 4 * * *", "0 4 * * *", "America/New_York"),
        ("CRON_TZ=Europe/Istanbul   30 8 1 * *", "30 8 1 * *", "Europe/Istanbul"),
        ("CRON_TZ=UTC * * * * *", "* * * * *", "UTC"),
        ("CRON_TZ=Asia/Kolkata 0 0 * * *", "0 0 * * *", "Asia/Kolkata"),
        ("0 0 1,15 * *", "0 0 1,15 * *", "UTC"),
        ("0 0 * JAN-MAR MON-FRI", "0 0 * JAN-MAR MON-FRI", "UTC"),
        ("0 0 * jan,jul sun", "0 0 * jan,jul sun", "UTC"),
        ("0 0 ? * ?", "0 0 ? * ?", "UTC"),
        ("5/15 * * * *", "5/15 * * * *", "UTC"),
        ("0-30/10 8-18/2 * * 7", "0-30/10 8-18/2 * * 7", "UTC"),
        ("0 0 29 2 *", "0 0 29 2 *", "UTC"),
    ],
)
def test_parse_valid(expr: str, fields: str, tz: str) -> None:
    spec = CronSpec.parse(expr)
    assert spec.expr == expr
    assert spec.fields == fields
    assert spec.tz == tz


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("", "expected 5 fields"),
        ("   ", "expected 5 fields"),
        ("* * *", "expected 5 fields.*got 3"),
        ("* * * *", "got 4"),
        ("* * * * * *", "got 6"),  # no seconds field
        ("0 0 * * * 2024", "got 6"),
        ("@hourly", "got 1"),
        ("@every 5m", "got 2"),
        ("CRON_TZ=UTC", "expected 5 fields"),
        ("CRON_TZ=UTC * * *", "got 3"),
        ("61 * * * *", 'minute field "61".*expected 0-59'),
        ("60 * * * *", "minute"),
        ("* 24 * * *", "hour field"),
        ("* * 0 * *", "day-of-month field"),
        ("* * 32 * *", "day-of-month field"),
        ("* * * 0 *", "month field"),
        ("* * * 13 *", "month field"),
        ("* * * * 8", "day-of-week field"),
        ("* * * foo *", "'foo' is not allowed"),
        ("* * * * funday", "cannot parse"),
        ("* * * mon *", "month field"),  # weekday name in the month field
        ("* * * * jan", "day-of-week field"),
        ("*/0 * * * *", "step must be at least 1"),
        ("5-1 * * * *", "reversed"),
        ("0 0 * * fri-mon", "reversed"),
        ("-5 * * * *", "cannot parse"),
        ("1- * * * *", "cannot parse"),
        ("1,,2 * * * *", "cannot parse"),
        ("? * * * *", "only allowed in the day-of-month and day-of-week"),
        ("0 0 L * *", "cannot parse"),  # croniter extension
        ("0 0 * * 1#2", "cannot parse"),  # croniter extension
        ("0 0 15W * *", "cannot parse"),
        ("H * * * *", "cannot parse"),
        ("0 0 30 2 *", "never matches"),
        ("0 0 31 4 *", "never matches"),
        ("CRON_TZ=Nope/Zone * * * * *", 'unknown time zone "Nope/Zone"'),
        ("CRON_TZ= * * * * *", "empty CRON_TZ"),
        ("CRON_TZ=../../etc/passwd * * * * *", "unknown time zone"),
        ("CRON_TZ=America/New_York", "expected 5 fields"),
        ("TZ=UTC * * * * *", "got 6"),
        ("cron_tz=UTC * * * * *", "got 6"),
    ],
)
def test_parse_invalid(expr: str, message: str) -> None:
    with pytest.raises(CronError, match=message):
        CronSpec.parse(expr)


def test_cron_error_quotes_expression_and_is_value_error() -> None:
    assert issubclass(CronError, ValueError)
    with pytest.raises(CronError, match='invalid cron "61 \\* \\* \\* \\*"'):
        CronSpec.parse("61 * * * *")


def test_equality_and_hash() -> None:
    a = CronSpec.parse("0 9 * * *")
    b = CronSpec.parse(" 0  9 * * * ")
    c = CronSpec.parse("CRON_TZ=America/New_York 0 9 * * *")
    assert a == b
    assert hash(a) == hash(b)
    assert a != c
    assert repr(c) == "CronSpec('CRON_TZ=America/New_York 0 9 * * *')"


# --- next_after basics ---------------------------------------------------------------------


def test_every_five_minutes_over_one_day() -> None:
    spec = CronSpec.parse("*/5 * * * *")
    midnight = _ts(2024, 5, 17)
    times = _chain(spec, midnight - 1, midnight + 86_400)
    assert len(times) == 288
    assert times[0] == midnight
    assert times[-1] == midnight + 86_400 - 300
    assert all(b - a == 300 for a, b in pairwise(times))


def test_every_five_minutes_chained_from_midnight() -> None:
    # Speed is the benchmarks' business; here only the chained times.
    spec = CronSpec.parse("*/5 * * * *")
    midnight = _ts(2024, 1, 1)
    t = midnight
    times = []
    for _ in range(288):
        t = spec.next_after(t)
        times.append(t)
    assert times[0] == midnight + 300
    assert times[-1] == midnight + 86_400
    assert len(set(times)) == 288


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("* * * * *", 0.0, 60.0),
        ("* * * * *", 0.5, 60.0),
        ("* * * * *", 59.0, 60.0),
        ("* * * * *", 59.5, 60.0),
        ("* * * * *", 59.9999999, 60.0),  # no microsecond rounding past the fire time
        ("* * * * *", 60.0, 120.0),  # strictly after
        ("* * * * *", 60.000001, 120.0),
        ("0 * * * *", 0.0, 3600.0),
        ("0 * * * *", -1.0, 0.0),
        ("0 0 * * *", 86_399.0, 86_400.0),
        ("0 0 * * *", 86_400.0, 172_800.0),
        ("30 12 * * *", 0.0, 45_000.0),
    ],
)
def test_next_after_is_strictly_after(expr: str, after: float, expected: float) -> None:
    assert CronSpec.parse(expr).next_after(after) == expected


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        # 2024-01-01 is a Monday.
        ("0 9 * * 1-5", datetime(2024, 1, 5, 10), datetime(2024, 1, 8, 9)),
        ("0 9 * * MON-FRI", datetime(2024, 1, 5, 10), datetime(2024, 1, 8, 9)),
        ("0 9 * * sat,sun", datetime(2024, 1, 1), datetime(2024, 1, 6, 9)),
        ("0 0 * * 0", datetime(2024, 1, 1), datetime(2024, 1, 7)),
        ("0 0 * * 7", datetime(2024, 1, 1), datetime(2024, 1, 7)),  # 7 is Sunday too
        ("0 0 1 * *", datetime(2024, 1, 15), datetime(2024, 2, 1)),
        ("0 0 31 * *", datetime(2024, 2, 1), datetime(2024, 3, 31)),  # skips short months
        ("0 0 1 jan *", datetime(2024, 6, 1), datetime(2025, 1, 1)),
        ("0 0 29 2 *", datetime(2023, 3, 1), datetime(2024, 2, 29)),
        ("0 0 29 2 *", datetime(2024, 3, 1), datetime(2028, 2, 29)),
        # day-of-month OR day-of-week when both are restricted (Vixie cron semantics)
        ("0 0 13 * 5", datetime(2024, 1, 1), datetime(2024, 1, 5)),
        ("0 0 13 * 5", datetime(2024, 1, 12, 1), datetime(2024, 1, 13)),
        ("15,45 */6 * * *", datetime(2024, 1, 1, 6, 20), datetime(2024, 1, 1, 6, 45)),
        ("15,45 */6 * * *", datetime(2024, 1, 1, 6, 50), datetime(2024, 1, 1, 12, 15)),
        ("5/15 * * * *", datetime(2024, 1, 1, 0, 50), datetime(2024, 1, 1, 1, 5)),
        ("0 0 * 2 *", datetime(2024, 3, 1), datetime(2025, 2, 1)),
    ],
)
def test_next_after_calendar_cases(expr: str, after: datetime, expected: datetime) -> None:
    spec = CronSpec.parse(expr)
    result = spec.next_after(after.replace(tzinfo=UTC).timestamp())
    assert _utc(result) == expected.replace(tzinfo=UTC)


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_next_after_rejects_non_finite(bad: float) -> None:
    with pytest.raises(CronError):
        CronSpec.parse("* * * * *").next_after(bad)


@pytest.mark.parametrize("expr", ["* * * * *", "CRON_TZ=America/New_York * * * * *"])
@pytest.mark.parametrize("ts", [1e18, -1e18])
def test_next_after_out_of_datetime_range(expr: str, ts: float) -> None:
    with pytest.raises(CronError):
        CronSpec.parse(expr).next_after(ts)


# --- time zones and DST ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "utc_hour"),
    [
        (date(2024, 1, 15), 14),  # EST, UTC-5
        (date(2024, 3, 9), 14),  # day before spring forward
        (date(2024, 3, 10), 13),  # spring forward happens at 02:00, before 09:00
        (date(2024, 7, 4), 13),  # EDT, UTC-4
        (date(2024, 11, 2), 13),
        (date(2024, 11, 3), 14),  # fall back happens at 02:00
        (date(2024, 12, 25), 14),
    ],
)
def test_new_york_nine_am_follows_dst(day: date, utc_hour: int) -> None:
    spec = CronSpec.parse("CRON_TZ=America/New_York 0 9 * * *")
    result = spec.next_after(_ts(day.year, day.month, day.day, 0, 0, NEW_YORK))
    assert _utc(result) == datetime(day.year, day.month, day.day, utc_hour, tzinfo=UTC)
    local = datetime.fromtimestamp(result, tz=NEW_YORK)
    assert (local.hour, local.minute) == (9, 0)


def test_new_york_daily_chain_across_transitions() -> None:
    spec = CronSpec.parse("CRON_TZ=America/New_York 0 9 * * *")
    times = _chain(spec, _ts(2024, 3, 1), _ts(2024, 11, 30))
    gaps = [b - a for a, b in pairwise(times)]
    assert gaps.count(23 * 3600) == 1  # spring forward
    assert gaps.count(25 * 3600) == 1  # fall back
    assert all(g == 24 * 3600 for g in gaps if g not in (23 * 3600, 25 * 3600))
    assert all(datetime.fromtimestamp(t, tz=NEW_YORK).hour == 9 for t in times)


def test_utc_default_ignores_dst() -> None:
    spec = CronSpec.parse("0 9 * * *")
    for day in (date(2024, 1, 15), date(2024, 7, 15)):
        result = spec.next_after(_ts(day.year, day.month, day.day))
        assert _utc(result).hour == 9


@pytest.mark.parametrize(
    ("zone", "day", "expected_count"),
    [
        ("America/New_York", date(2024, 3, 10), 23 * 4),  # 23-hour day
        ("America/New_York", date(2024, 11, 3), 25 * 4),  # 25-hour day
        ("America/New_York", date(2024, 6, 1), 24 * 4),
        ("Europe/Berlin", date(2024, 3, 31), 23 * 4),
        ("Europe/Berlin", date(2024, 10, 27), 25 * 4),
        ("Asia/Kolkata", date(2024, 3, 31), 24 * 4),  # no DST
        ("UTC", date(2024, 3, 10), 24 * 4),
    ],
)
def test_quarter_hourly_over_local_day(zone: str, day: date, expected_count: int) -> None:
    tz = ZoneInfo(zone)
    spec = CronSpec.parse(f"CRON_TZ={zone} */15 * * * *")
    start = datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz).timestamp()
    times = _chain(spec, start - 1, end)
    assert len(times) == expected_count
    assert times[0] == start
    assert all(b - a == 900 for a, b in pairwise(times))


def test_spring_forward_gap_fires_once_after_the_gap() -> None:
    # 2024-03-10 02:00 EST does not exist in New York; clocks jump to 03:00 EDT (07:00Z).
    spec = CronSpec.parse("CRON_TZ=America/New_York 30 2 * * *")
    times = _chain(spec, _ts(2024, 3, 9, 12), _ts(2024, 3, 12, 12))
    assert [_utc(t) for t in times] == [
        datetime(2024, 3, 10, 7, 0, tzinfo=UTC),
        datetime(2024, 3, 11, 6, 30, tzinfo=UTC),
        datetime(2024, 3, 12, 6, 30, tzinfo=UTC),
    ]


def test_fall_back_repeated_time_fires_at_each_occurrence() -> None:
    # 01:30 happens twice in New York on 2024-11-03 (EDT then EST); croniter fires at both.
    spec = CronSpec.parse("CRON_TZ=America/New_York 30 1 * * *")
    times = _chain(spec, _ts(2024, 11, 2, 12), _ts(2024, 11, 4, 12))
    assert [_utc(t) for t in times] == [
        datetime(2024, 11, 3, 5, 30, tzinfo=UTC),
        datetime(2024, 11, 3, 6, 30, tzinfo=UTC),
        datetime(2024, 11, 4, 6, 30, tzinfo=UTC),
    ]


def test_next_after_inside_repeated_hour() -> None:
    spec = CronSpec.parse("CRON_TZ=America/New_York 0 * * * *")
    # 06:15Z is 01:15 EST, the second pass through 01:xx; next full hour is 02:00 EST.
    assert _utc(spec.next_after(_ts(2024, 11, 3, 6, 15))) == datetime(2024, 11, 3, 7, tzinfo=UTC)
    # 05:15Z is 01:15 EDT; the next full hour is the repeated 01:00, now EST.
    assert _utc(spec.next_after(_ts(2024, 11, 3, 5, 15))) == datetime(2024, 11, 3, 6, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "utc_hour", "utc_minute"),
    [
        ("Asia/Kolkata", 3, 30),  # UTC+5:30
        ("Asia/Kathmandu", 3, 15),  # UTC+5:45
        ("Asia/Tokyo", 0, 0),
        ("Pacific/Honolulu", 19, 0),  # UTC-10
        ("Etc/GMT+5", 14, 0),  # POSIX sign convention: UTC-5
    ],
)
def test_fixed_offset_zones(zone: str, utc_hour: int, utc_minute: int) -> None:
    spec = CronSpec.parse(f"CRON_TZ={zone} 0 9 * * *")
    result = spec.next_after(_ts(2024, 6, 1, 20))
    assert (_utc(result).hour, _utc(result).minute) == (utc_hour, utc_minute)
    assert datetime.fromtimestamp(result, tz=ZoneInfo(zone)).hour == 9


# --- cache correctness and a brute-force oracle ------------------------------------------------


def _expand(field: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    values: set[int] = set()
    for item in field.split(","):
        base, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if base in ("*", "?"):
            start, end = low, high
        else:
            lo_text, _, hi_text = base.partition("-")
            start = int(lo_text) if lo_text.isdigit() else names[lo_text.lower()]
            if hi_text:
                end = int(hi_text) if hi_text.isdigit() else names[hi_text.lower()]
            else:
                end = high if step_text else start
        values.update(range(start, end + 1, step))
    return values


_MONTH_NAMES = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAY_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, 1)}
_DAYS = {d: i for i, d in enumerate(_DAY_NAMES)}


def _oracle_next_utc(fields: str, after: float) -> float:
    """Independent, slow reference: enumerate UTC calendar days, then hours and minutes."""
    minute_f, hour_f, dom_f, month_f, dow_f = fields.split()
    minutes = sorted(_expand(minute_f, 0, 59, {}))
    hours = sorted(_expand(hour_f, 0, 23, {}))
    doms = _expand(dom_f, 1, 31, {})
    months = _expand(month_f, 1, 12, _MONTHS)
    dows = {d % 7 for d in _expand(dow_f, 0, 7, _DAYS)}
    dom_any, dow_any = dom_f in ("*", "?"), dow_f in ("*", "?")
    day = _utc(after).date()
    for _ in range(366 * 9):
        cron_dow = (day.weekday() + 1) % 7
        dom_ok, dow_ok = day.day in doms, cron_dow in dows
        # Vixie cron: OR the day fields only when both are restricted.
        day_ok = (dom_ok and dow_ok) if (dom_any or dow_any) else (dom_ok or dow_ok)
        if day.month in months and day_ok:
            for h in hours:
                for m in minutes:
                    t = datetime(day.year, day.month, day.day, h, m, tzinfo=UTC).timestamp()
                    if t > after:
                        return t
        day += timedelta(days=1)
    raise AssertionError("oracle found nothing")


_ORACLE_EXPRESSIONS = [
    "* * * * *",
    "*/5 * * * *",
    "*/7 * * * *",
    "0 * * * *",
    "17 */3 * * *",
    "0,30 9-17 * * 1-5",
    "45 23 * * *",
    "0 0 1 * *",
    "0 0 31 * *",
    "0 12 15 */2 *",
    "30 6 * * sun",
    "0 0 13 * 5",
    "10-20/5 1,13 * * *",
    "0 4 8-14 * 1",
    "5/20 2 * jun-aug *",
    "0 0 29 2 *",
]


@pytest.mark.parametrize("expr", _ORACLE_EXPRESSIONS)
def test_matches_brute_force_oracle(expr: str) -> None:
    rng = random.Random(expr)
    spec = CronSpec.parse(expr)
    start = _ts(2023, 1, 1)
    points = [start + rng.uniform(0, 3 * 365 * 86_400) for _ in range(40)]
    points += [math.floor(p / 60) * 60 for p in points[:10]]  # exact minute boundaries
    for after in points:
        assert spec.next_after(after) == _oracle_next_utc(spec.fields, after), after
    # Chaining from a random point must agree as well.
    t = points[0]
    for _ in range(25):
        expected = _oracle_next_utc(spec.fields, t)
        t = spec.next_after(t)
        assert t == expected


@pytest.mark.parametrize(
    "expr",
    [
        "*/5 * * * *",
        "0 9 * * 1-5",
        "CRON_TZ=America/New_York 30 1 * * *",
        "CRON_TZ=America/New_York */20 * * * *",
        "CRON_TZ=Europe/London 0 1,2 * * *",
        "CRON_TZ=Australia/Sydney 0 2 * * *",
    ],
)
def test_cached_spec_agrees_with_fresh_spec_for_arbitrary_query_order(expr: str) -> None:
    rng = random.Random(expr)
    cached = CronSpec.parse(expr)
    base = _ts(2024, 3, 1)
    queries: list[float] = []
    t = base
    for _ in range(60):
        t = cached.next_after(t)
        queries += [t, t - 1, t + 1, t - 0.001, t + 0.001]
    queries += [base + rng.uniform(0, 270 * 86_400) for _ in range(60)]
    rng.shuffle(queries)
    # Interleave with chained calls so the cache is exercised in every state.
    for q in queries:
        expected = CronSpec.parse(expr).next_after(q)
        assert cached.next_after(q) == expected, q
        assert expected > q
        follow = cached.next_after(expected)
        assert follow == CronSpec.parse(expr).next_after(expected)


def test_repeated_and_backward_queries() -> None:
    spec = CronSpec.parse("0 * * * *")
    assert spec.next_after(7200.0) == 10_800.0
    assert spec.next_after(7200.0) == 10_800.0
    assert spec.next_after(3599.0) == 3600.0  # backwards
    assert spec.next_after(3600.0) == 7200.0
    assert spec.next_after(10 * 3600.0 + 5) == 11 * 3600.0  # forward jump
    assert spec.next_after(1000 * 3600.0) == 1001 * 3600.0  # far forward jump
    assert spec.next_after(3600.5) == 7200.0


def _random_field(rng: random.Random, low: int, high: int, names: list[str]) -> str:
    def value() -> str:
        n = rng.randint(low, high)
        if names and rng.random() < 0.3:
            return names[n - low] if n - low < len(names) else str(n)
        return str(n)

    items = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        kind = rng.choice(["*", "n", "n", "range", "step", "range-step", "n-step"])
        if kind == "*":
            return rng.choice(["*", f"*/{rng.randint(1, high - low + 1)}"])
        if kind == "n":
            items.append(value())
        else:
            a, b = sorted(rng.sample(range(low, high + 1), 2))
            step = rng.randint(1, max(1, (b - a) // 2 + 1))
            items.append(
                {"range": f"{a}-{b}", "step": f"*/{step}", "range-step": f"{a}-{b}/{step}"}.get(
                    kind, f"{a}/{step}"
                )
            )
    return ",".join(items)


def _random_expression(rng: random.Random) -> str:
    fields = [
        _random_field(rng, 0, 59, []),
        _random_field(rng, 0, 23, []),
        rng.choice(["*", "*", _random_field(rng, 1, 31, [])]),
        rng.choice(["*", "*", _random_field(rng, 1, 12, _MONTH_NAMES)]),
        rng.choice(["*", "*", _random_field(rng, 0, 6, _DAY_NAMES)]),
    ]
    return " ".join(fields)


@pytest.mark.parametrize("zone", ["UTC", "Etc/GMT+5", "Etc/GMT-14"])
@pytest.mark.parametrize("seed", range(8))
def test_fixed_offset_fast_path_matches_croniter(zone: str, seed: int) -> None:
    """UTC-like zones bypass croniter at run time; they must agree with it exactly."""
    from croniter import croniter

    rng = random.Random(seed)
    tz = ZoneInfo(zone)
    checked = 0
    while checked < 25:
        fields = _random_expression(rng)
        try:
            spec = CronSpec.parse(f"CRON_TZ={zone} {fields}")
        except CronError:
            continue  # e.g. "0 0 30 2 *"
        checked += 1
        after = _ts(2023, 1, 1) + rng.uniform(0, 5 * 365 * 86_400)
        for _ in range(3):
            start = datetime.fromtimestamp(math.floor(after), tz=tz)
            expected = croniter(spec.fields, start).get_next(float)
            assert spec.next_after(after) == expected, (fields, after)
            after = expected if rng.random() < 0.5 else expected - rng.uniform(0, 3600)
