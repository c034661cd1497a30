"""Small helpers the project's tests share (import as `from helpers import ...`)."""

from __future__ import annotations

from typing import Any

from pytest_httpserver import HTTPServer
from qstash import QStash
from qstash_emulator import Emulator
from werkzeug import Request


def requests_to(httpserver: HTTPServer, path: str) -> list[Request]:
    return [req for req, _ in httpserver.log if req.path == path]


def times(emu: Emulator, url: str) -> list[float]:
    """Virtual times (seconds after the first) of each delivery attempt to `url`."""
    stamps = [d.time for d in emu.engine.delivered if d.url == url]
    return [round(t - stamps[0], 3) for t in stamps]


def states(client: QStash, message_id: str) -> list[str]:
    """A message's log states, oldest first."""
    logs = client.log.list(filter={"message_id": message_id}).logs
    return [log.state.value for log in reversed(logs)]


def header(req: Request, name: str) -> Any:
    return req.headers.get(name)
