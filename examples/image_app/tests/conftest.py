"""The app under test, served over real HTTP on 127.0.0.1 so QStash's deliveries reach it.

Everything QStash-side comes from the `pytest_qstash` plugin: its `qstash` fixture starts (or
resets) the emulator and sets QSTASH_URL, QSTASH_TOKEN and the signing keys in the environment,
which the app reads at start-up like it reads them in production.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiohttp import web

from image_app.app import create_app

# A key the app forwards to the image and chat APIs: api.openai.com is answered by the
# emulator's scripted engine (it never reaches the network), which wants some bearer token.
FAKE_OPENAI_KEY = "sk-test-not-a-real-key"


class AppServer:
    """An aiohttp app on its own event loop in a background thread, on a free local port."""

    def __init__(self, app: web.Application) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def _call(self, coro: Any) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    async def _start(self) -> None:
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()

    def start(self) -> AppServer:
        self._thread.start()
        self._call(self._start())
        return self

    def stop(self) -> None:
        try:
            self._call(self._runner.cleanup())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            self._loop.close()
            self._sock.close()


@dataclass
class LiveApp:
    """The running app, and an HTTP client for the requests a user (or a browser) makes."""

    url: str
    http: httpx.Client

    def generate_image(self, prompt: str, **options: str) -> str:
        """POST /generate-image; the submission id."""
        response = self.http.post("/generate-image", json={"prompt": prompt, **options})
        assert response.status_code == 202, response.text
        submission: str = response.json()["id"]
        return submission

    def chat(self, prompt: str, **options: str) -> str:
        """POST /chat; the submission id."""
        response = self.http.post("/chat", json={"prompt": prompt, **options})
        assert response.status_code == 202, response.text
        submission: str = response.json()["id"]
        return submission

    def image_status(self, submission: str) -> dict[str, Any]:
        response = self.http.get("/get-image-is-ready", params={"id": submission})
        assert response.status_code == 200, response.text
        report: dict[str, Any] = response.json()
        return report

    def chat_status(self, submission: str) -> dict[str, Any]:
        response = self.http.get("/get-chat-is-ready", params={"id": submission})
        assert response.status_code == 200, response.text
        report: dict[str, Any] = response.json()
        return report


ServeApp = Callable[..., LiveApp]


@pytest.fixture
def serve_app(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ServeApp]:
    """`serve_app(**env)`: start the app with these environment variables set (on top of the
    QStash ones the plugin sets) and return it; it is stopped after the test."""
    # The QStash env must be in place first: the app reads it when it is created. A test that
    # asks for `qstash_fresh` gets the app wired to that server.
    fresh = "qstash_fresh" in request.fixturenames
    request.getfixturevalue("qstash_fresh" if fresh else "qstash")
    running: list[tuple[AppServer, httpx.Client]] = []

    def serve(**env: str) -> LiveApp:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        server = AppServer(create_app()).start()
        http = httpx.Client(base_url=server.url, timeout=30)
        running.append((server, http))
        return LiveApp(server.url, http)

    yield serve
    for server, http in running:
        http.close()
        server.stop()


@pytest.fixture
def live_app(serve_app: ServeApp) -> LiveApp:
    """The app as configured in production: images and chat from api.openai.com (which the
    emulator answers with its scripted engine)."""
    return serve_app(OPENAI_API_KEY=FAKE_OPENAI_KEY)
