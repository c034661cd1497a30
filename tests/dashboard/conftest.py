"""Browser fixtures: one headless Chromium for the browser tests (they live in one module), a
fresh page and emulator per test.

The browser is module-scoped, not session-scoped, on purpose: Playwright's sync API keeps its
own event loop marked as running in the thread while it is started, so asyncio tests that run
after it in the same process would fail ("cannot be called from a running event loop").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from browser_setup import CHROMIUM_ARGS, require_chromium
from qstash import QStash
from qstash_emulator import Emulator


def pytest_configure(config: pytest.Config) -> None:
    # `pytest_plugins` is only allowed in the top-level conftest; register pytester here.
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")


@pytest.fixture(scope="session")
def chromium() -> str:
    return require_chromium()


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    # What a person would see shows up within milliseconds; the margin is for a loaded machine.
    expect.set_options(timeout=10_000)

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def client(emu: Emulator) -> QStash:
    return QStash(emu.token, base_url=emu.url, retry=False)


@pytest.fixture(scope="module")
def browser_context(browser: Any) -> Iterator[Any]:
    # One context for the module (a new one costs ~0.3 s); `page` clears its cookies per test.
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    context.set_default_timeout(10_000)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(browser_context: Any) -> Iterator[Any]:
    browser_context.clear_cookies()
    tab = browser_context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield tab
    finally:
        tab.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def open_live(page: Any, emu: Emulator, path: str) -> None:
    """Open a dashboard page and wait until its live-update stream is connected."""
    from playwright.sync_api import expect

    page.goto(emu.url + path)
    expect(page.locator("#live.on")).to_be_visible()
