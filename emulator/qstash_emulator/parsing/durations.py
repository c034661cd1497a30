"""Parsing and formatting of the time values QStash accepts in headers.

Pure functions, no I/O. Three dialects are involved:

* `Upstash-Delay` durations: integer `<number><unit>` groups with units
  `d`, `h`, `m`, `s` (`"10s"`, `"1d10h30m"`), or a bare integer
  meaning seconds.
* Rate-limit reset response headers (`Retry-After`, `X-RateLimit-Reset*`):
  seconds, epoch timestamps, HTTP dates or Go-style durations (`"6m5s"`).
* `Upstash-Not-Before`: an integer Unix timestamp in seconds.
"""

from __future__ import annotations

import math
import re
from datetime import timezone
from email.utils import parsedate_to_datetime

__all__ = [
    "MAX_RESET_SECONDS",
    "DurationError",
    "format_duration",
    "parse_duration",
    "parse_not_before",
    "parse_reset_value",
]

# QStash never waits longer than its maximum backoff (one day) for a reset header.
MAX_RESET_SECONDS = 86_400.0

# Inputs longer than this are rejected before any regex or int() work is done.
_MAX_INPUT_CHARS = 100

_INT64_MAX = 2**63 - 1

_DURATION_UNITS: dict[str, int] = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}

# Units must appear at most once and in descending order, so "5m6h" and "1s1s" are rejected.
# [0-9] rather than \d: \d would also accept non-ASCII digits such as "٣".
_DURATION_RE = re.compile(
    r"(?:(?P<d>[0-9]+)d)?(?:(?P<h>[0-9]+)h)?(?:(?P<m>[0-9]+)m)?(?:(?P<s>[0-9]+)s)?"
)
_BARE_INT_RE = re.compile(r"[0-9]+")

_NUMBER_RE = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")

# Go's time.ParseDuration units; "ms"/"ns"/"us" are listed before "m"/"s" so they win.
_GO_UNITS: dict[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,  # MICRO SIGN
    "\u03bcs": 1e-6,  # GREEK SMALL LETTER MU
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3_600.0,
}
_GO_GROUP = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h)"
_GO_DURATION_RE = re.compile(rf"(?:{_GO_GROUP})+")
_GO_GROUP_RE = re.compile(
    r"(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?P<unit>ns|us|\u00b5s|\u03bcs|ms|s|m|h)"
)

# Plain numbers above these thresholds are absolute epoch timestamps, not relative seconds.
_EPOCH_SECONDS_THRESHOLD = 10**9
_EPOCH_MILLIS_THRESHOLD = 10**12


class DurationError(ValueError):
    """Raised when a duration or timestamp header value is malformed."""


def _quote(text: str) -> str:
    """Quote user input for an error message, truncating absurdly long values."""
    shown = text if len(text) <= 60 else text[:57] + "..."
    return f'"{shown}"'


def parse_duration(text: str) -> float:
    """Parse a QStash duration such as `"10s"`, `"6m5s"` or `"1d10h30m"` into seconds.

    A bare non-negative integer (`"30"`) means seconds. Surrounding whitespace is
    ignored. Raises `DurationError` for anything else (empty, negative,
    fractional, unknown or repeated units, units out of order, inner whitespace).
    """
    stripped = text.strip()
    if not stripped:
        raise DurationError(f"invalid duration {_quote(text)}: empty")
    if len(stripped) > _MAX_INPUT_CHARS:
        raise DurationError(f"invalid duration {_quote(text)}: too long")
    if _BARE_INT_RE.fullmatch(stripped):
        return float(int(stripped))
    match = _DURATION_RE.fullmatch(stripped)
    # The regex matches the empty string, so an all-empty match means no group matched.
    if match is None or not any(match.groupdict().values()):
        raise DurationError(
            f"invalid duration {_quote(text)}: expected <integer><unit> groups with units "
            'd, h, m, s in that order (e.g. "10s", "6m5s", "1d10h30m")'
        )
    total = sum(
        int(value) * _DURATION_UNITS[unit]
        for unit, value in match.groupdict().items()
        if value is not None
    )
    return float(total)


def _parse_go_duration(text: str) -> float | None:
    if not _GO_DURATION_RE.fullmatch(text):
        return None
    return sum(
        float(group["num"]) * _GO_UNITS[group["unit"]] for group in _GO_GROUP_RE.finditer(text)
    )


def _parse_http_date(text: str, now: float) -> float | None:
    # A date always contains letters (day/month names); skip the lenient parser otherwise.
    if not any(ch.isalpha() for ch in text):
        return None
    try:
        parsed = parsedate_to_datetime(text)
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        # HTTP dates are always GMT; a missing zone (e.g. asctime format) means UTC.
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.timestamp() - now
    except (OverflowError, ValueError):
        return None


def _clamp_reset(seconds: float) -> float | None:
    # Past a day QStash ignores the header and applies its backoff: None tells the caller so.
    if math.isnan(seconds) or seconds > MAX_RESET_SECONDS:
        return None
    return max(seconds, 0.0)


def parse_reset_value(value: str, now: float) -> float | None:
    """Interpret a rate-limit reset response header as seconds from `now` until reset.

    Accepted forms, tried in order:

    * plain non-negative number: relative seconds (`"20"`, `"0.5"`), except that a
      value above 1e12 is an epoch timestamp in milliseconds and above 1e9 an epoch
      timestamp in seconds;
    * Go-style duration as sent by OpenAI and others (`"6m5s"`, `"60ms"`,
      `"1.5s"`, `"2h0m0s"`), units ns, us/µs, ms, s, m, h;
    * HTTP date (`"Wed, 21 Oct 2015 07:28:00 GMT"`).

    A reset in the past gives 0. Returns `None` for anything unparseable (including
    negative numbers) and for a reset more than a day away; never raises.
    """
    text = value.strip()
    if not text or len(text) > _MAX_INPUT_CHARS:
        return None
    if _NUMBER_RE.fullmatch(text):
        number = float(text)
        if number > _EPOCH_MILLIS_THRESHOLD:
            return _clamp_reset(number / 1000.0 - now)
        if number > _EPOCH_SECONDS_THRESHOLD:
            return _clamp_reset(number - now)
        return _clamp_reset(number)
    go_seconds = _parse_go_duration(text)
    if go_seconds is not None:
        return _clamp_reset(go_seconds)
    date_seconds = _parse_http_date(text, now)
    if date_seconds is not None:
        return _clamp_reset(date_seconds)
    return None


def parse_not_before(value: str) -> int:
    """Parse an `Upstash-Not-Before` header: a non-negative integer Unix timestamp (s)."""
    text = value.strip()
    if not _BARE_INT_RE.fullmatch(text) or len(text) > 19:
        raise DurationError(
            f"invalid Upstash-Not-Before {_quote(value)}: expected a Unix timestamp in seconds"
        )
    timestamp = int(text)
    # QStash stores it as a Go int64.
    if timestamp > _INT64_MAX:
        raise DurationError(f"invalid Upstash-Not-Before {_quote(value)}: out of range")
    return timestamp


def format_duration(seconds: float) -> str:
    """Format seconds for display, e.g. `3661 -> "1h1m1s"`, `0 -> "0s"`, `90000 -> "1d1h"`.

    Output for whole seconds is accepted by `parse_duration`. Fractions are kept to
    millisecond precision (`1.5 -> "1.5s"`). Negative values get a leading `-` and
    non-finite values are rendered as `"inf"`, `"-inf"` or `"nan"` rather than raising.
    """
    if not math.isfinite(seconds):
        return str(float(seconds))
    sign = "-" if seconds < 0 else ""
    total_ms = round(abs(seconds) * 1000)
    if total_ms == 0:
        return "0s"
    whole, millis = divmod(total_ms, 1000)
    days, whole = divmod(whole, 86_400)
    hours, whole = divmod(whole, 3_600)
    minutes, secs = divmod(whole, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    if millis:
        parts.append(f"{secs}.{millis:03d}".rstrip("0") + "s")
    elif secs:
        parts.append(f"{secs}s")
    return sign + "".join(parts)
