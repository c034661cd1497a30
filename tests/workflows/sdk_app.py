"""A workflow app for the tests: routes written with the official `upstash-workflow` SDK,
served over real HTTP on 127.0.0.1 (aiohttp, in a thread of its own) so the emulator's signed
deliveries reach them. The SDK's `async_serve` handler is framework-free; `WorkflowApp.route`
adapts an aiohttp request to it."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from qstash import AsyncQStash
from upstash_workflow import AsyncWorkflowContext, async_serve

Route = Callable[[AsyncWorkflowContext[Any]], Awaitable[Any]]


class _Request:
    """What the SDK's handler reads: headers, body(), url."""

    def __init__(self, request: web.Request, body: bytes) -> None:
        self.headers = request.headers
        self.url = str(request.url)
        self.method = request.method
        self.query = dict(request.query)
        self._body = body

    async def body(self) -> bytes:
        return self._body


class WorkflowApp:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.app = web.Application()
        self.seen: dict[str, dict[str, Any]] = {}  # run id -> what the route recorded
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.base = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        return self.base + path

    def record(self, context: AsyncWorkflowContext[Any], **fields: Any) -> None:
        self.seen.setdefault(context.workflow_run_id, {}).update(fields)

    def route(self, path: str, **options: Any) -> Callable[[Route], Route]:
        """`@app.route("/seq", retries=0, failure_function=...)` over a route function."""

        def register(fn: Route) -> Route:
            handler: list[Any] = []

            async def handle(request: web.Request) -> web.Response:
                if not handler:  # built on the app's loop, where its client will run
                    client = AsyncQStash(self.env["QSTASH_TOKEN"], base_url=self.env["QSTASH_URL"])
                    handler.append(
                        async_serve(fn, qstash_client=client, env=self.env, **options)["handler"]
                    )
                answer = await handler[0](_Request(request, await request.read()))
                return web.Response(text=answer.body, status=answer.status, headers=answer.headers)

            self.app.router.add_post(path, handle)
            return fn

        return register

    def start(self) -> WorkflowApp:
        self._thread.start()

        async def up() -> None:
            self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
            await self._runner.setup()
            await web.SockSite(self._runner, self._sock).start()

        asyncio.run_coroutine_threadsafe(up(), self._loop).result(timeout=30)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()
        self._sock.close()
