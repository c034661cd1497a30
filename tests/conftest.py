"""Shared fixtures for the project's own tests (the public fixtures live in pytest_qstash)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from pytest_httpserver import HTTPServer
from qstash import QStash, Receiver
from qstash_emulator import Emulator
from werkzeug import Request, Response


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def client(emu: Emulator) -> QStash:
    return QStash(emu.token, base_url=emu.url, retry=False)


@pytest.fixture
def receiver(emu: Emulator) -> Receiver:
    return Receiver(emu.user.current_signing_key, emu.user.next_signing_key)


@pytest.fixture
def target(httpserver: HTTPServer) -> Callable[..., str]:
    """`target(path, *statuses, headers=...)`: a URL answering `statuses` in turn, the last
    one repeating."""

    def make(path: str = "/hook", *statuses: int, headers: dict[str, str] | None = None) -> str:
        answers = list(statuses) or [200]
        calls = {"n": 0}

        def handler(request: Request) -> Response:
            i = min(calls["n"], len(answers) - 1)
            calls["n"] += 1
            return Response(f"answer {calls['n']}", status=answers[i], headers=headers or {})

        httpserver.expect_request(path).respond_with_handler(handler)
        return httpserver.url_for(path)

    return make
