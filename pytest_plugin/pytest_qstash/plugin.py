"""pytest11 entry point: options, the `qstash` marker and the fixtures.

One emulator per session (per xdist worker: each worker is its own process, ports are picked
by the OS) is reset before every test; a test whose marker changes what the server is built
from (extra users, real time, fresh=True) or that asks for `qstash_fresh` gets its own.

pytest imports this module in every run where the package is installed, so at import it needs
only pytest and the light `config` module: the emulator (aiohttp, Faker, croniter, PyYAML) and
the qstash SDK are imported when a QStash fixture first runs (`_server_types`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from . import config as cfg
from .clients import Clients

if TYPE_CHECKING:
    from qstash import AsyncQStash, QStash, Receiver

    from .harness import QStashHarness
    from .server import Server

__all__ = [
    "QStashEmulatorWarning",
    "qstash",
    "qstash_async_client",
    "qstash_client",
    "qstash_fresh",
    "qstash_llm",
    "qstash_receiver",
    "qstash_server",
]


class QStashEmulatorWarning(UserWarning):
    """Something failed inside the emulator during a test (a bug there, not in the app)."""


class _Session:
    """Per pytest session (so per xdist worker): settings, the shared server, SDK clients."""

    def __init__(self, config: pytest.Config) -> None:
        self.settings = cfg.from_config(config)
        self.clients = Clients()
        self.shared: Server | None = None

    def shared_server(self) -> Server:
        if self.shared is None:
            server_type, _ = _server_types()
            self.shared = server_type(self.settings)
        return self.shared

    def close(self) -> None:
        if self.shared is not None:
            self.shared.stop()
            self.shared = None


_SESSION = pytest.StashKey[_Session]()
_HARNESS = pytest.StashKey["QStashHarness"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    cfg.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "qstash(seed=0, quota='payg', users=[], llm_scripts=[], rate_limits={}, "
        "real_time=False, log=False, auto_advance=False, fresh=False): configure the QStash "
        "emulator of this test (pytest-qstash)",
    )
    config.stash[_SESSION] = _Session(config)  # bad options fail here, before any test


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(_SESSION, None)
    if session is not None:
        session.close()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    # Before the report is made, so a failing test shows its emulator log like captured output.
    if call.when != "call":
        return
    harness = item.stash.get(_HARNESS, None)
    # A reset still due means the test never reached the emulator: the lines are older.
    if harness is not None and harness.settings.log and harness.server.reset_done:
        text = harness.server.log_text()
        if text:
            item.add_report_section("call", "qstash log", text)


def _session(config: pytest.Config) -> _Session:
    return config.stash[_SESSION]


def _server_types() -> tuple[type[Server], type[QStashHarness]]:
    # The one place the emulator gets imported: when a test first needs a server.
    from .harness import QStashHarness
    from .server import Server

    return Server, QStashHarness


@pytest.fixture(scope="session")
def qstash_server(pytestconfig: pytest.Config) -> Iterator[Server]:
    """The session's shared emulator (reset before each test by `qstash`)."""
    session = _session(pytestconfig)
    yield session.shared_server()
    session.close()


def _harness(request: pytest.FixtureRequest, fresh: bool) -> Iterator[QStashHarness]:
    session = _session(request.config)
    kwargs = cfg.marker_kwargs(request.node.iter_markers("qstash"))
    here = str(request.node.path.parent) if "llm_scripts" in kwargs else None
    settings = cfg.for_test(session.settings, kwargs, here)
    if fresh and not settings.fresh:
        settings = replace(settings, fresh=True)
    own = settings.own_server(session.settings)
    server_type, harness_type = _server_types()
    # The shared server is held by the session (stopped at unconfigure), not by a fixture:
    # a dynamic fixture lookup per test costs more than the reset itself.
    server = server_type(settings) if own else session.shared_server()
    try:
        try:
            server.prepare(settings)
        except (RuntimeError, TypeError, ValueError) as exc:
            pytest.fail(f"qstash: {exc}", pytrace=False)
        harness = harness_type(server, settings, session.clients)
        request.node.stash[_HARNESS] = harness
        env = server.default_env
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        try:
            yield harness
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            _after_test(request, harness, session)
    finally:
        if own:
            server.stop()


def _after_test(request: pytest.FixtureRequest, harness: QStashHarness, session: _Session) -> None:
    # A reset still queued means nothing of this test reached the emulator: no need to wait.
    errors = harness.server.emulator.errors if harness.server.reset_done else []
    if errors:
        warnings.warn(
            QStashEmulatorWarning(
                "errors inside the QStash emulator: " + "; ".join(repr(e) for e in errors)
            ),
            stacklevel=1,
        )
    path = harness.settings.log_file
    if harness.settings.log and path:
        text = harness.server.log_text() if harness.server.reset_done else ""
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"== {request.node.nodeid}\n{text + chr(10) if text else ''}")


@pytest.fixture
def qstash(request: pytest.FixtureRequest) -> Iterator[QStashHarness]:
    """A ready QStash emulator for this test.

    Fresh state (the session's server, reset), the app's env set (QSTASH_URL, QSTASH_TOKEN,
    signing keys), time control and assertions.
    """
    yield from _harness(request, fresh=False)


@pytest.fixture
def qstash_fresh(request: pytest.FixtureRequest) -> Iterator[QStashHarness]:
    """Like `qstash`, on a server started for this test alone (and stopped after it)."""
    yield from _harness(request, fresh=True)


def _current(request: pytest.FixtureRequest) -> QStashHarness:
    # Clients follow whichever emulator the test asked for.
    name = "qstash_fresh" if "qstash_fresh" in request.fixturenames else "qstash"
    found: QStashHarness = request.getfixturevalue(name)
    return found


@pytest.fixture
def qstash_client(request: pytest.FixtureRequest) -> QStash:
    """The official sync `QStash` client, pointed at the test's emulator."""
    return _current(request).client()


@pytest.fixture
def qstash_async_client(request: pytest.FixtureRequest) -> AsyncQStash:
    """The official `AsyncQStash` client, pointed at the test's emulator (any loop scope)."""
    return _current(request).async_client()


@pytest.fixture
def qstash_receiver(request: pytest.FixtureRequest) -> Receiver:
    """The official `Receiver` with the default user's signing keys."""
    return _current(request).receiver()


@pytest.fixture
def qstash_llm(request: pytest.FixtureRequest) -> Any:
    """The emulator's scripted LLM engine: `reply(...)`, `load_script(...)`, `calls`."""
    emulator = _current(request).emulator
    llm = getattr(emulator, "llm", None)
    if llm is None:
        pytest.fail("qstash: this emulator has no LLM engine (Emulator.llm)", pytrace=False)
    return llm
