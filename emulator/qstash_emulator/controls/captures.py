"""Capture URLs' state: the requests each capture name received and the replies it gives.

Deliveries to `{emulator}/__capture/{name}` are recorded here (the handlers are in
`http/capture.py`); tests in Python read and steer it directly, e.g. `emu.captures`.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.clock import Clock

__all__ = ["PREFIX", "CaptureStore", "Captured", "Reply", "ReplyLike", "make_reply", "url"]

PREFIX = "/__capture/"
_NAME = re.compile(r"^[A-Za-z0-9._~-]+$")


@dataclass(frozen=True)
class Reply:
    """What a capture URL answers."""

    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


# A reply as given: a status, a Reply, or a mapping with status/body/headers.
ReplyLike = int | Reply | Mapping[str, Any]


def make_reply(
    value: ReplyLike | None = None,
    *,
    status: int = 200,
    body: bytes | str | Any = b"",
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """A `Reply` from what a test gives.

    Args:
        value: A status, a `Reply`, or a mapping with "status", "body" and "headers".
        status: The status when `value` gives none.
        body: Bytes, text, or anything else (sent as JSON, with its Content-Type).
        headers: Response headers.

    Raises:
        ValueError: If the status is not within 100..599.
    """
    if isinstance(value, Reply):
        return value
    if isinstance(value, int):
        status = value
    elif value is not None:
        status = int(value.get("status", status))
        body = value.get("body", body)
        headers = value.get("headers", headers)
    if isinstance(body, str):
        data = body.encode()
    elif isinstance(body, bytes):
        data = body
    else:  # anything else is sent as JSON
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **(headers or {})}
    if not 100 <= status <= 599:
        raise ValueError(f"status must be 100..599, not {status}")
    return Reply(status, data, tuple((headers or {}).items()))


@dataclass
class Captured:
    """One request a capture URL received."""

    name: str
    method: str
    path: str  # path and query string as received
    headers: list[tuple[str, str]]
    body: bytes
    time: float  # the emulator's clock
    status: int  # what the capture answered

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        lower = name.lower()
        return next((v for k, v in self.headers if k.lower() == lower), None)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    def as_dict(self) -> dict[str, Any]:
        """The request as JSON-ready data (what GET /__captures/{name} answers)."""
        return {
            "name": self.name,
            "method": self.method,
            "path": self.path,
            "headers": [list(pair) for pair in self.headers],
            "body": self.text,
            "body_base64": base64.b64encode(self.body).decode(),
            "time": self.time,
            "status": self.status,
        }


@dataclass
class _Capture:
    """The requests one capture name received and the replies it will give."""

    name: str
    requests: list[Captured] = field(default_factory=list)
    default: Reply = field(default_factory=Reply)
    queued: deque[Reply] = field(default_factory=deque)

    def next_reply(self) -> Reply:
        return self.queued.popleft() if self.queued else self.default


class CaptureStore:
    """All capture names of one emulator.

    Safe to use from a test's thread while the emulator's loop records requests (one lock;
    every operation is short).

    Args:
        clock: Stamps each recorded request.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._captures: dict[str, _Capture] = {}
        self._lock = threading.Lock()

    def _get(self, name: str) -> _Capture:
        if not _NAME.match(name):
            raise ValueError(f"capture names use A-Z a-z 0-9 . _ ~ -, not {name!r}")
        found = self._captures.get(name)
        if found is None:
            found = self._captures[name] = _Capture(name)
        return found

    def respond(
        self,
        name: str,
        reply: Reply | None = None,
        sequence: Iterable[ReplyLike] | None = None,
    ) -> None:
        """Set the default reply and/or queue replies used first, one per request, in order."""
        queued = [make_reply(r) for r in sequence] if sequence is not None else None
        with self._lock:
            capture = self._get(name)
            if reply is not None:
                capture.default = reply
            if queued is not None:
                capture.queued = deque(queued)

    def record(
        self, name: str, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> Reply:
        """Record a request that reached capture `name` and return the reply it gets.

        Raises:
            ValueError: If `name` has characters other than A-Z a-z 0-9 . _ ~ -.
        """
        with self._lock:
            capture = self._get(name)
            reply = capture.next_reply()
            capture.requests.append(
                Captured(name, method, path, headers, body, self.clock.now(), reply.status)
            )
        return reply

    def requests(self, name: str) -> list[Captured]:
        """The requests capture `name` received, oldest first (empty for an unknown name)."""
        with self._lock:
            found = self._captures.get(name)
            return list(found.requests) if found is not None else []

    def counts(self) -> dict[str, int]:
        """How many requests each capture name received."""
        with self._lock:
            return {name: len(c.requests) for name, c in self._captures.items()}

    def forget(self, name: str) -> None:
        """Forget a capture name's requests and replies."""
        with self._lock:
            self._captures.pop(name, None)

    def reset(self) -> None:
        """Forget every capture (a test's reset)."""
        with self._lock:
            self._captures.clear()


def url(base: str, name: str) -> str:
    """The capture URL of `name` on the emulator at `base`."""
    return base.rstrip("/") + PREFIX + name
