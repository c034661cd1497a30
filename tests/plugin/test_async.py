"""Async tests (pytest-asyncio): the a* twins await the emulator's loop from the test's loop."""

from __future__ import annotations

import pytest
from aiohttp import web
from pytest_qstash import QStashHarness
from qstash import AsyncQStash


async def test_async_client_and_assertions(
    qstash: QStashHarness, qstash_async_client: AsyncQStash
) -> None:
    hook = qstash.capture()
    result = await qstash_async_client.message.publish_json(url=hook.url, body={"a": 1}, delay="5m")
    await qstash.aassert_not_delivered(hook)
    await qstash.aadvance("5m")
    [d] = await qstash.aassert_delivered(hook, json={"a": 1})
    assert d.message_id == result.message_id  # type: ignore[union-attr]
    assert [r.json() for r in await hook.arequests()] == [{"a": 1}]


async def test_destination_served_by_the_tests_own_loop(
    qstash: QStashHarness, qstash_async_client: AsyncQStash
) -> None:
    # While the test awaits the emulator, its own loop keeps serving the destination.
    received: list[bytes] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        url = f"http://127.0.0.1:{port}/hook"
        await qstash_async_client.message.publish(url=url, body="in-loop")
        await qstash.aassert_delivered(url, body="in-loop", status=200)
        assert received == [b"in-loop"]
        deliveries = await qstash.adeliveries(url)
        assert deliveries[0].signed
    finally:
        await runner.cleanup()


@pytest.mark.asyncio(loop_scope="module")
async def test_module_scoped_loop(qstash: QStashHarness, qstash_async_client: AsyncQStash) -> None:
    hook = qstash.capture()
    await qstash_async_client.message.publish(url=hook.url, body="m")
    await qstash.asettle()
    [found] = await qstash.await_for(hook)
    assert found.text == "m"


@pytest.mark.asyncio(loop_scope="session")
async def test_session_scoped_loop(qstash: QStashHarness, qstash_async_client: AsyncQStash) -> None:
    hook = qstash.capture()
    await qstash_async_client.message.publish(url=hook.url, body="s", delay="1h")
    await qstash.arun_until_idle()
    await qstash.aassert_delivered(hook, body="s", times=1)


async def test_sync_helpers_work_in_async_tests(
    qstash: QStashHarness, qstash_async_client: AsyncQStash
) -> None:
    # Blocking helpers are fine when the destination is not served by this loop.
    hook = qstash.capture()
    await qstash_async_client.message.publish(url=hook.url, body="x")
    qstash.assert_delivered(hook, body="x")
