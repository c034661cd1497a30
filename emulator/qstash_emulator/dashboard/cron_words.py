"""A cron expression in words ("every 5 minutes", "at 09:00 on Monday through Friday")."""

from __future__ import annotations

__all__ = ["describe"]

MONTHS = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip
DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_MONTH_NAMES = {m[:3].lower(): i for i, m in enumerate(MONTHS, start=1)}
_DAY_NAMES = {d[:3].lower(): i for i, d in enumerate(DAYS[:7])}


def _number(token: str, names: dict[str, int]) -> int | None:
    token = token.lower()
    if token in names:
        return names[token]
    return int(token) if token.isdigit() else None


def _item(item: str, names: dict[str, int], word: list[str] | None, unit: str) -> str:
    """One comma-separated item of a field: N, N-M, */S, N-M/S, N/S."""
    base, _, step = item.partition("/")

    def show(token: str) -> str:
        n = _number(token, names)
        if n is None:
            return token
        if word is not None:
            return word[n - 1] if word is MONTHS else word[n]
        return str(n)

    if base in ("*", "?"):
        text = f"every {unit}" if not step else f"every {step} {unit}s"
        return text
    if "-" in base:
        lo, hi = base.split("-", 1)
        text = f"{show(lo)} through {show(hi)}"
    else:
        text = show(base)
    return f"every {step} {unit}s from {text}" if step else text


def _field(expr: str, names: dict[str, int], word: list[str] | None, unit: str) -> str:
    items = [_item(i, names, word, unit) for i in expr.split(",")]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def describe(expression: str) -> str:
    """The expression in words; the expression itself when it is not five fields."""
    text = expression.strip()
    zone = "UTC"
    if text.startswith("CRON_TZ="):
        zone, _, text = text[len("CRON_TZ=") :].partition(" ")
    fields = text.split()
    if len(fields) != 5:
        return expression
    minute, hour, dom, month, dow = fields
    if minute.isdigit() and hour.isdigit():
        when = f"at {int(hour):02d}:{int(minute):02d}"
    elif minute.isdigit() and hour == "*":
        when = f"every hour at minute {int(minute)}"
    elif minute == "*" and hour == "*":
        when = "every minute"
    elif minute.startswith("*/") and hour == "*":
        when = f"every {minute[2:]} minutes"
    elif minute.isdigit() and hour.startswith("*/"):
        when = f"every {hour[2:]} hours at minute {int(minute)}"
    else:
        minutes = _field(minute, {}, None, "minute")
        when = minutes if minutes.startswith("every") else f"at minute {minutes}"
        if hour != "*":
            when += f", during hour {_field(hour, {}, None, 'hour')}"
    parts = [when]
    if dom not in ("*", "?"):
        parts.append(f"on day {_field(dom, {}, None, 'day')} of the month")
    if dow not in ("*", "?"):
        joiner = "or on" if dom not in ("*", "?") else "on"
        parts.append(f"{joiner} {_field(dow, _DAY_NAMES, DAYS, 'day')}")
    if month not in ("*", "?"):
        parts.append(f"in {_field(month, _MONTH_NAMES, MONTHS, 'month')}")
    return " ".join(parts) + f" ({zone})"
