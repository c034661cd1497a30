"""The request log the dev server prints: one line per API request and per delivery attempt.

Lines are plain text (coloured on a terminal) or JSON objects (`--log-format json`), one a line.
Tokens never appear: query parameters that carry one are dropped from paths and URLs, headers
are never logged, and every known user token is masked in whatever text remains.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timezone
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aiohttp import web
from aiohttp.typedefs import Middleware

from ..core.clock import Clock, ms
from ..core.state import CANCELLED, DELIVERED, FAILED, RETRY, Delivered

if TYPE_CHECKING:
    from ..emulator import Emulator

__all__ = ["LEVELS", "RequestLog", "attach", "ids_of", "middleware", "strip_tokens", "use_colour"]

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
TOKEN_PARAMS = frozenset({"qstashtoken", "qstash_token", "token", "access_token"})
MASK = "***"
FLUSH_EVERY = 0.05  # seconds a line may wait in the buffer when not on a terminal

_RESET, _DIM, _BOLD = "\033[0m", "\033[2m", "\033[1m"
_COLOURS = {"debug": "\033[2m", "info": "\033[32m", "warning": "\033[33m", "error": "\033[31m"}
_METHOD = "\033[36m"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def use_colour(stream: IO[str], choice: str = "auto") -> bool:
    """`always`, `never`, or `auto`: on a terminal, unless NO_COLOR is set."""
    if choice != "auto":
        return choice == "always"
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def strip_tokens(url: str) -> str:
    """The URL or path without query parameters that carry a token."""
    if "?" not in url:
        return url
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    kept = [(k, v) for k, v in query if k.lower() not in TOKEN_PARAMS]
    if len(kept) == len(query):
        return url
    return urlunsplit(parts._replace(query=urlencode(kept)))


_SECOND: list[Any] = [None, ""]  # the last whole second formatted: lines come in bursts


def _iso(t: float) -> str:
    second = int(t // 1)
    if _SECOND[0] != second:
        _SECOND[:] = [
            second,
            datetime.fromtimestamp(second, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
        ]
    return f"{_SECOND[1]}.{int((t - second) * 1000):03d}Z"


def _short(ids: list[str]) -> str:
    if len(ids) <= 3:
        return ",".join(ids)
    return ",".join(ids[:3]) + f",+{len(ids) - 3}"


class RequestLog:
    """Formats and writes log lines. `secrets()` lists the strings to mask (users' tokens)."""

    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        clock: Clock | None = None,
        level: str = "info",
        fmt: str = "text",
        colour: bool | None = None,
        secrets: Callable[[], Iterable[str]] = lambda: (),
    ) -> None:
        if level not in LEVELS:
            raise ValueError(f"log level must be one of {', '.join(LEVELS)}")
        if fmt not in ("text", "json"):
            raise ValueError("log format must be 'text' or 'json'")
        self.stream = stream if stream is not None else sys.stdout
        self.clock = clock
        self.threshold = LEVELS[level]
        self.fmt = fmt
        self.colour = use_colour(self.stream) if colour is None else colour
        codes = {"dim": _DIM, "reset": _RESET, "bold": _BOLD, "method": _METHOD, **_COLOURS}
        self._codes = codes if self.colour else dict.fromkeys(codes, "")
        self.secrets = secrets
        self._flush_pending = False
        isatty = getattr(self.stream, "isatty", None)
        self._tty = bool(isatty and isatty())

    def now(self) -> float:
        """The time lines are stamped with (the emulator's clock)."""
        return self.clock.now() if self.clock is not None else time.time()

    # -- what a line says ---------------------------------------------------------------------
    # Lines are formatted directly (no intermediate dict) in text mode: the log runs for every
    # publish and every attempt, so it stays a few microseconds a line.
    def request(
        self,
        method: str,
        path: str,
        status: int,
        elapsed_ms: float,
        ids: dict[str, list[str]],
        error: str | None = None,
    ) -> None:
        """One API request. `ids`: {"messageId": [...], "scheduleId": [...], ...}."""
        level = "debug" if path.startswith("/__") else _status_level(status)
        if LEVELS[level] < self.threshold:
            return
        path = strip_tokens(path)
        if self.fmt == "json":
            fields: dict[str, Any] = {
                "time": _iso(self.now()),
                "level": level,
                "kind": "request",
                "method": method,
                "path": path,
                "status": status,
                "ms": round(elapsed_ms, 1),
            }
            fields.update({k: v for k, v in ids.items() if v})
            if error:
                fields["error"] = error
            self._write(json.dumps(fields, separators=(",", ":"), ensure_ascii=False))
            return
        c = self._codes
        line = (
            f"{c['dim']}{_iso(self.now())[11:]}{c['reset']} {c['method']}{method}{c['reset']} "
            f"{path} {c[level]}{c['bold']}{status}{c['reset']} {round(elapsed_ms, 1):g}ms"
        )
        for key, values in ids.items():
            if values:
                line += f"  {key}={_short(values)}"
        if error:
            line += f"  {c[level]}{error}{c['reset']}"
        self._write(line)

    def attempt(self, record: Delivered) -> None:
        """One delivery attempt, after its outcome is settled (next retry known)."""
        message, response = record.message, record.response
        state = message.state
        if state == DELIVERED:
            level = "info"
        elif state in (FAILED, CANCELLED):
            level = "error"
        else:
            level = "warning"
        if LEVELS[level] < self.threshold:
            return
        url = strip_tokens(record.url)
        status = response.status if response is not None else None
        error = response.error if response is not None else None
        timer = message.timer
        retry_at = (
            timer.due if state == RETRY and timer is not None and not timer.cancelled else None
        )
        if self.fmt == "json":
            fields: dict[str, Any] = {
                "time": _iso(self.now()),
                "level": level,
                "kind": "delivery",
                "messageId": message.id,
                "url": url,
                "method": record.method,
                "attempt": record.retried + 1,
                "attempts": message.max_retries + 1,
                "state": state,
            }
            if message.kind != "message":
                fields["type"] = message.kind
            if message.schedule_id:
                fields["scheduleId"] = message.schedule_id
            if status is not None:
                fields["status"] = status
            if error:
                fields["error"] = error
            if retry_at is not None:
                fields["nextRetry"] = _iso(retry_at)
                fields["nextRetryMs"] = ms(retry_at)
            self._write(json.dumps(fields, separators=(",", ":"), ensure_ascii=False))
            return
        c = self._codes
        what = "deliver" if message.kind == "message" else message.kind.replace("_", " ")
        outcome = "no answer" if status is None else str(status)
        line = (
            f"{c['dim']}{_iso(self.now())[11:]}{c['reset']} {c['method']}→ {what}{c['reset']} "
            f"{message.id} {record.method} {url} {c[level]}{c['bold']}{outcome} {state}"
            f"{c['reset']}  attempt {record.retried + 1}/{message.max_retries + 1}"
        )
        if error:
            line += f"  {c[level]}{error}{c['reset']}"
        if retry_at is not None:
            line += f"  next retry {_iso(retry_at)}"
        if message.schedule_id:
            line += f"  scheduleId={message.schedule_id}"
        self._write(line)

    def note(self, text: str, level: str = "info") -> None:
        """A line of the emulator's own (time moved, state reset, schedule triggered)."""
        if LEVELS[level] < self.threshold:
            return
        if self.fmt == "json":
            fields = {"time": _iso(self.now()), "level": level, "kind": "emulator", "text": text}
            self._write(json.dumps(fields, separators=(",", ":"), ensure_ascii=False))
            return
        c = self._codes
        when = _iso(self.now())[11:]
        self._write(f"{c['dim']}{when}{c['reset']} {c['method']}emulator{c['reset']} {text}")

    # -- writing ------------------------------------------------------------------------------
    def _write(self, line: str) -> None:
        # Masked as a whole: a token may hide anywhere (a path, an id, an error message).
        self.stream.write(self.mask(line) + "\n")
        # Not a flush per line: at most one per loop turn on a terminal, and every 50 ms into a
        # file or pipe, so a burst of publishes costs a few writes, not one per line.
        if not self._flush_pending:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.stream.flush()
                return
            self._flush_pending = True
            if self._tty:
                loop.call_soon(self._flush)
            else:
                loop.call_later(FLUSH_EVERY, self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        self.stream.flush()

    def mask(self, line: str) -> str:
        """The line with every secret replaced by `***`."""
        for secret in self.secrets():
            if secret and secret in line:
                line = line.replace(secret, MASK)
        return line


def _status_level(status: int) -> str:
    if status >= 500:
        return "error"
    return "warning" if status >= 400 else "info"


# -- wiring into the server ---------------------------------------------------------------------
_ID_KEYS = ("messageId", "scheduleId", "dlqId")


def ids_of(request: web.Request, response: web.StreamResponse | None) -> dict[str, list[str]]:
    """Message, schedule and DLQ ids a request named (path) or made (JSON answer)."""
    found: dict[str, list[str]] = {key: [] for key in _ID_KEYS}
    for key in _ID_KEYS:
        value = request.match_info.get(key)
        if value:
            found[key].append(value)
    body = getattr(response, "body", None)
    if (
        isinstance(body, bytes)
        and body.startswith(b'{"messageId":"')
        and body.endswith(b'"}')
        and body.count(b'"') == 4
    ):
        # A publish's answer, the common case: no JSON parsing for it.
        message_id = body[14:-2].decode()
        if message_id not in found["messageId"]:
            found["messageId"].append(message_id)
        return found
    if (
        isinstance(body, bytes)
        and len(body) < 1_000_000
        and b'Id"' in body  # messageId, scheduleId, dlqId: no JSON parsing otherwise
        and response is not None
        and response.content_type == "application/json"
    ):
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        for item in data if isinstance(data, list) else [data]:
            if isinstance(item, dict):
                for key in _ID_KEYS:
                    value = item.get(key)
                    if isinstance(value, str) and value not in found[key]:
                        found[key].append(value)
    return found


def _error_of(response: web.StreamResponse) -> str | None:
    body = getattr(response, "body", None)
    if response.status < 400 or not isinstance(body, bytes):
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):  # OpenAI's error shape
        error = error.get("message")
    return str(error) if error else None


def middleware(log: RequestLog) -> Middleware:
    """Outermost middleware: sees the final status (after errors became JSON answers)."""

    @web.middleware
    async def request_log(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            elapsed = (time.perf_counter() - start) * 1000
            log.request(request.method, request.path_qs, exc.status, elapsed, ids_of(request, None))
            raise
        except BaseException:
            elapsed = (time.perf_counter() - start) * 1000
            log.request(request.method, request.path_qs, 500, elapsed, ids_of(request, None))
            raise
        elapsed = (time.perf_counter() - start) * 1000
        log.request(
            request.method,
            request.path_qs,
            response.status,
            elapsed,
            ids_of(request, response),
            _error_of(response),
        )
        return response

    return request_log


def attach(emulator: Emulator, log: RequestLog) -> None:
    """Log every request the emulator serves and every delivery attempt it makes."""
    log.clock = emulator.clock
    users = emulator.users
    known: list[Any] = [-1, ()]  # (user count, tokens): users are only ever added

    def tokens() -> tuple[str, ...]:
        if known[0] != len(users):
            known[:] = [len(users), tuple(user.token for user in users)]
        tokens: tuple[str, ...] = known[1]
        return tokens

    log.secrets = tokens
    emulator.add_middleware(middleware(log))
    emulator.add_settled_listener(log.attempt)
    emulator.control.notes.append(log.note)
