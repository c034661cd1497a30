from __future__ import annotations

import math
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest
from qstash_emulator.parsing.durations import (
    DurationError,
    format_duration,
    parse_duration,
    parse_not_before,
    parse_reset_value,
)

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


# --- parse_duration -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10),
        ("0s", 0),
        ("50s", 50),
        ("1m", 60),
        ("5m", 300),
        ("30m", 1800),
        ("2h", 7200),
        ("10h", 36_000),
        ("1d", 86_400),
        ("7d", 604_800),
        ("6m5s", 365),
        ("1h1m1s", 3661),
        ("1d10h30m", 124_200),
        ("1d1h1m1s", 90_061),
        ("1d30s", 86_430),
        ("90s", 90),
        ("120m", 7200),
        ("007s", 7),
        ("30", 30),
        ("0", 0),
        ("  10s  ", 10),
        ("\t5m\n", 300),
        (" 42 ", 42),
    ],
)
def test_parse_duration_valid(text: str, seconds: int) -> None:
    result = parse_duration(text)
    assert result == seconds
    assert isinstance(result, float)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "5x",
        "s",
        "-5s",
        "-5",
        "+5s",
        "1.5",
        "1.5s",
        "10S",
        "10 s",
        "1m 5s",
        "5m6h",  # out of order
        "1s1s",  # repeated
        "1h1h",
        "5ms",  # not a QStash delay unit
        "1w",
        "1y",
        "abc",
        "s10",
        "10s5",
        "1d-1h",
        "0x10",
        "1e3",
        "\u0663s",  # ARABIC-INDIC DIGIT THREE is not an ASCII digit
        "1" * 200 + "s",  # over the length limit
    ],
)
def test_parse_duration_invalid(text: str) -> None:
    with pytest.raises(DurationError, match="invalid duration"):
        parse_duration(text)


def test_parse_duration_error_quotes_input() -> None:
    with pytest.raises(DurationError, match='invalid duration "5x"'):
        parse_duration("5x")


def test_duration_error_is_value_error() -> None:
    assert issubclass(DurationError, ValueError)


# --- parse_reset_value ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # plain relative seconds
        ("0", 0.0),
        ("20", 20.0),
        ("0.5", 0.5),
        (".25", 0.25),
        ("3.", 3.0),
        ("  20  ", 20.0),
        ("86400", 86_400.0),
        ("86401", None),
        ("1000000000", None),  # exactly 1e9 is still relative seconds
        # Go / OpenAI style durations
        ("6m5s", 365.0),
        ("1s", 1.0),
        ("60ms", 0.06),
        ("1.5s", 1.5),
        ("2h0m0s", 7200.0),
        ("6m0.5s", 360.5),
        ("1h", 3600.0),
        ("500us", 0.0005),
        ("500\u00b5s", 0.0005),
        ("500\u03bcs", 0.0005),
        ("1000000ns", 0.001),
        ("1m1m", 120.0),  # Go accepts repeated units
        ("30h", None),
        ("0s", 0.0),
    ],
)
def test_parse_reset_value_relative(value: str, expected: float | None) -> None:
    result = parse_reset_value(value, NOW)
    if expected is None:  # more than a day away: the caller falls back to its backoff
        assert result is None
    else:
        assert result == pytest.approx(expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (str(int(NOW) + 30), 30.0),
        (str(int(NOW) + 3600), 3600.0),
        (str(int(NOW) - 30), 0.0),  # in the past: retry now
        (str(int(NOW) + 200_000), None),
        (str(int(NOW) * 1000 + 1500), 1.5),  # epoch milliseconds
        (str(int(NOW) * 1000 - 1500), 0.0),
        (f"{NOW + 12.5}", 12.5),
    ],
)
def test_parse_reset_value_epoch(value: str, expected: float) -> None:
    assert parse_reset_value(value, NOW) == pytest.approx(expected)


def _http_date(ts: float) -> str:
    return format_datetime(datetime.fromtimestamp(ts, tz=timezone.utc), usegmt=True)


@pytest.mark.parametrize(
    ("offset", "expected"),
    [(0, 0.0), (45, 45.0), (3600, 3600.0), (-100, 0.0), (100_000, None)],
)
def test_parse_reset_value_http_date(offset: int, expected: float) -> None:
    value = _http_date(NOW + offset)
    assert value.endswith(" GMT")
    assert parse_reset_value(value, NOW) == pytest.approx(expected)


@pytest.mark.parametrize(
    "value",
    [
        "Wed, 21 Oct 2015 07:28:00 GMT",  # RFC 1123
        "Wednesday, 21-Oct-15 07:28:00 GMT",  # RFC 850
        "Wed Oct 21 07:28:00 2015",  # asctime, implicitly GMT
        "Wed, 21 Oct 2015 09:28:00 +0200",
    ],
)
def test_parse_reset_value_http_date_formats(value: str) -> None:
    target = datetime(2015, 10, 21, 7, 28, tzinfo=timezone.utc).timestamp()
    assert parse_reset_value(value, target - 90) == pytest.approx(90.0)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "soon",
        "-5",
        "-1s",
        "5x",
        "1d",  # Go durations have no day unit
        "5 s",
        "1e3",
        "nan",
        "inf",
        "Infinity",
        "s",
        "ms",
        "1.2.3",
        "Wed, 99 Oct 2015 07:28:00 GMT",
        "Foo, 21 Bar 2015 07:28:00 GMT",
        "9" * 500,
    ],
)
def test_parse_reset_value_unparseable_returns_none(value: str) -> None:
    assert parse_reset_value(value, NOW) is None


# --- parse_not_before -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1657104947", 1_657_104_947),
        ("0", 0),
        ("  1700000000 ", 1_700_000_000),
        ("9223372036854775807", 2**63 - 1),
    ],
)
def test_parse_not_before_valid(value: str, expected: int) -> None:
    result = parse_not_before(value)
    assert result == expected
    assert isinstance(result, int)


@pytest.mark.parametrize(
    "value",
    [
        "",
        " ",
        "-1",
        "+5",
        "1.5",
        "1657104947.0",
        "1e9",
        "abc",
        "10s",
        "Wed, 21 Oct 2015 07:28:00 GMT",
        "9223372036854775808",  # int64 overflow
        "1" * 40,
    ],
)
def test_parse_not_before_invalid(value: str) -> None:
    with pytest.raises(DurationError, match="Upstash-Not-Before"):
        parse_not_before(value)


# --- format_duration ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.0, "0s"),
        (0.0001, "0s"),  # below millisecond precision
        (1, "1s"),
        (59, "59s"),
        (60, "1m"),
        (61, "1m1s"),
        (365, "6m5s"),
        (3600, "1h"),
        (3661, "1h1m1s"),
        (7200, "2h"),
        (86_400, "1d"),
        (90_000, "1d1h"),
        (124_200, "1d10h30m"),
        (86_401, "1d1s"),
        (1.5, "1.5s"),
        (0.25, "0.25s"),
        (0.001, "0.001s"),
        (61.25, "1m1.25s"),
        (59.9999, "1m"),  # rounds to the millisecond before splitting
        (-90, "-1m30s"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        (math.nan, "nan"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    "seconds", [0, 1, 59, 60, 61, 3599, 3600, 3661, 86_399, 86_400, 90_061, 604_800, 10**7]
)
def test_format_duration_round_trips_through_parse_duration(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("seconds", [0.001, 0.06, 1.5, 365.5, 7200.25])
def test_format_duration_fractions_round_trip_through_reset_parser(seconds: float) -> None:
    # Fractional output is Go-duration compatible, so the reset-header parser reads it back.
    assert parse_reset_value(format_duration(seconds), NOW) == pytest.approx(seconds)
