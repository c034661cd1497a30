"""The README's screenshots of the main pages, taken from a representative emulator state.

Every run takes them (so the pages they show are checked to render); a file in docs/ is
rewritten only when the picture changed. For pictures that are the same on every run, the
emulator takes a fixed port when it is free, the app's URLs are rewritten to it (as an app that
publishes production URLs would do), the signing clock follows the virtual clock, and the
response's Date header is masked.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import open_live
from playwright.sync_api import expect
from qstash import QStash
from qstash_emulator import Emulator

DOCS = Path(__file__).resolve().parents[2] / "docs"
PORT = 48_080
APP = "https://shop.example.com"


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def shop() -> Iterator[Emulator]:
    with Emulator(port=PORT if port_is_free(PORT) else 0) as emulator:
        emulator.delivery.rewrite(APP, emulator.url + "/__capture")
        emulator.engine.wall = lambda: emulator.now  # deterministic signature times
        yield emulator


def save(page: Any, name: str, **options: Any) -> Path:
    date = page.locator("table.kv tr", has_text="Date").locator("td")
    picture = page.screenshot(mask=[date], mask_color="#f4f6f8", **options)
    assert picture[:8] == b"\x89PNG\r\n\x1a\n" and len(picture) > 10_000
    path = DOCS / f"dashboard-{name}.png"
    if not path.exists() or path.read_bytes() != picture:
        DOCS.mkdir(exist_ok=True)
        path.write_bytes(picture)
    return path


def populate(emu: Emulator, client: QStash) -> str:
    base = APP
    emu.faults.add(f"{base}/payments", status=503)
    emu.faults.add(f"{base}/inventory", fail_times=1, status=500)
    client.queue.upsert("emails", parallelism=2)
    welcome = client.message.publish_json(
        url=f"{base}/welcome", body={"email": "ada@example.com"}, label="signup"
    )
    client.message.publish_json(url=f"{base}/digest", body={"week": 1}, delay="2h", label="digest")
    client.message.publish_json(url=f"{base}/inventory", body={"sku": "A-1"}, retries=3)
    client.message.publish_json(url=f"{base}/payments", body={"charge": 1999}, retries=0)
    client.message.enqueue_json(
        queue="emails", url=f"{base}/mail", body={"to": "grace@example.com"}
    )
    client.schedule.create(destination=f"{base}/report", cron="0 9 * * 1-5", body="daily report")
    client.schedule.create(destination=f"{base}/cleanup", cron="*/15 * * * *", body="")
    emu.advance("5s")
    return welcome.message_id


def test_screenshots_of_the_main_pages(page: Any, shop: Emulator) -> None:
    emu = shop
    welcome = populate(emu, QStash(emu.token, base_url=emu.url, retry=False))
    page.set_viewport_size({"width": 1360, "height": 760})

    open_live(page, emu, "/__dashboard/messages")
    expect(page.locator("tr[data-message-id]")).to_have_count(5)
    save(page, "messages")

    open_live(page, emu, f"/__dashboard/messages/{welcome}")
    expect(page.get_by_test_id("attempt-status")).to_have_text("200")
    save(page, "message", full_page=True)

    open_live(page, emu, "/__dashboard/schedules")
    expect(page.locator("tr[data-schedule-id]")).to_have_count(2)
    save(page, "schedules")

    open_live(page, emu, "/__dashboard/dlq")
    expect(page.locator("tr[data-dlq-id]")).to_have_count(1)
    save(page, "dlq")
