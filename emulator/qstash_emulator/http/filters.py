"""Query filters and cursors shared by logs, the DLQ and bulk cancel."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from multidict import MultiMapping

from ..core.clock import ms
from ..core.errors import bad_request
from ..core.state import ACTIVE, CANCELLED, ERROR, IN_PROGRESS, RETRY, Message

__all__ = [
    "CANCEL_PARAMS",
    "DLQ_BULK_PARAMS",
    "MessageFilter",
    "count_param",
    "decode_cursor",
    "encode_cursor",
    "int_param",
    "message_filter",
    "page",
    "reject_unknown",
    "state_matches",
    "values",
]

_T = TypeVar("_T")


def values(query: MultiMapping[str], *names: str) -> list[str]:
    """All values of a multi-value filter: repeated (`a=1&a=2`) or comma-separated (`a=1,2`)."""
    out: list[str] = []
    for name in names:
        for raw in query.getall(name, []):
            out.extend(part.strip() for part in raw.split(",") if part.strip())
    return out


def int_param(query: MultiMapping[str], name: str) -> int | None:
    """The query parameter `name` as an integer, or None when absent or empty.

    Raises:
        ApiError: 400 when it is not an integer.
    """
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f"invalid {name}: {raw!r} is not an integer") from None


def count_param(query: MultiMapping[str], default: int, maximum: int) -> int:
    """The `count` query parameter, capped at `maximum` (`default` when absent).

    Raises:
        ApiError: 400 when it is not a positive integer.
    """
    count = int_param(query, "count")
    if count is None:
        return default
    if count < 1:
        raise bad_request(f"invalid count: {count}, must be at least 1")
    return min(count, maximum)


# The filters (and paging parameters) each bulk endpoint takes; anything else is refused, so a
# misspelt filter cannot widen a bulk delete to everything. The token may ride in the query.
_TOKEN = ("qstashToken", "qstash_token")
_DLQ_FILTERS = (
    "messageId",
    "url",
    "topicName",
    "scheduleId",
    "queueName",
    "fromDate",
    "toDate",
    "responseStatus",
    "callerIp",
    "callerIP",
    "label",
    "flowControlKey",
    "api",
)
CANCEL_PARAMS = frozenset(
    (
        "messageIds",
        "messageId",
        "topicName",
        "queueName",
        "url",
        "host",
        "path",
        "label",
        "flowControlKey",
        "fromDate",
        "toDate",
        "scheduleId",
        "callerIp",
        "callerIP",
        "api",
        "count",
        "cursor",
        *_TOKEN,
    )
)
DLQ_BULK_PARAMS = frozenset(("dlqIds", "count", "cursor", *_DLQ_FILTERS, *_TOKEN))


def reject_unknown(query: MultiMapping[str], known: frozenset[str]) -> None:
    """Refuse a query naming a parameter not in `known` (before anything is changed).

    Raises:
        ApiError: 400 naming the unknown parameters.
    """
    unknown = sorted({name for name in query if name not in known})
    if unknown:
        raise bad_request(
            f"unknown query parameter{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(known - set(_TOKEN)))})"
        )


@dataclass
class MessageFilter:
    """AND across filters, OR across the values of one filter."""

    checks: list[Callable[[Message, float], bool]]

    def __call__(self, message: Message, time: float) -> bool:
        """Whether `message` (its event at `time`, clock seconds) passes every filter."""
        return all(check(message, time) for check in self.checks)


def message_filter(query: MultiMapping[str], *, time_field: str = "event") -> MessageFilter:
    """The predicate a logs, DLQ or cancel request's filter parameters describe.

    Args:
        query: The request's query (or the JSON body's filter fields).
        time_field: Which time `fromDate`/`toDate` compare with.

    Raises:
        ApiError: 400 for a malformed parameter.
    """
    checks: list[Callable[[Message, float], bool]] = []

    def any_of(names: tuple[str, ...], get: Callable[[Message], Any]) -> None:
        wanted = values(query, *names)
        if wanted:
            checks.append(lambda m, t: str(get(m)) in wanted)

    any_of(("messageId", "messageIds"), lambda m: m.id)
    any_of(("url",), lambda m: m.url)
    any_of(("topicName",), lambda m: m.topic_name)
    any_of(("queueName",), lambda m: m.queue_name)
    any_of(("scheduleId",), lambda m: m.schedule_id)
    any_of(("callerIp", "callerIP"), lambda m: m.caller_ip)
    any_of(("flowControlKey",), lambda m: m.flow_control.key if m.flow_control else None)
    any_of(("api",), lambda m: m.api)
    any_of(("host",), lambda m: urlsplit(m.url).netloc)
    any_of(("path",), lambda m: urlsplit(m.url).path)
    labels = values(query, "label")
    if labels:
        checks.append(lambda m, t: any(label in m.labels for label in labels))
    from_date = int_param(query, "fromDate")
    to_date = int_param(query, "toDate")
    if from_date is not None:
        checks.append(lambda m, t: ms(t) >= from_date)
    if to_date is not None:
        checks.append(lambda m, t: ms(t) <= to_date)
    return MessageFilter(checks)


def state_matches(wanted: str | None, state: str) -> bool:
    """Whether a log event's `state` matches the `state` filter (IN_PROGRESS covers three)."""
    if not wanted:
        return True
    if wanted == IN_PROGRESS:
        return state in (ACTIVE, RETRY, ERROR)
    if wanted == "CANCELLED":  # the reference's spelling
        wanted = CANCELLED
    return state == wanted


def encode_cursor(key: Any) -> str:
    """An opaque cursor for `key` (JSON, base64url without padding)."""
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    """The key a cursor from `encode_cursor` holds.

    Raises:
        ApiError: 400 for a cursor that is not one of ours.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, json.JSONDecodeError):
        raise bad_request(f"invalid cursor: {cursor!r}") from None


def page(
    items: Sequence[_T], key: Callable[[_T], Any], cursor: str | None, count: int
) -> tuple[list[_T], str | None]:
    """Items are sorted newest first by `key`; a cursor is the key of the last item served."""
    start = 0
    if cursor:
        after = decode_cursor(cursor)
        try:
            while start < len(items) and _jsonable(key(items[start])) >= after:
                start += 1
        except TypeError:  # a cursor of another shape than this listing's keys
            raise bad_request(f"invalid cursor: {cursor!r}") from None
    chunk = list(items[start : start + count])
    more = start + count < len(items)
    return chunk, encode_cursor(_jsonable(key(chunk[-1]))) if more and chunk else None


def _jsonable(key: Any) -> Any:
    # Tuples come back from JSON as lists; compare like with like.
    return json.loads(json.dumps(key))
