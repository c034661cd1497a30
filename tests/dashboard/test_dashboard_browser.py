"""The dashboard driven the way a person uses it: a real headless Chromium on the real page.

Waiting is Playwright's `expect`, which polls the page until what a person would see is there;
the emulator's clock moves only when a test (or the page's own buttons) moves it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import open_live
from playwright.sync_api import expect
from protocol_workflow import ProtocolWorkflow
from qstash import QStash
from qstash_emulator import Emulator


def capture_url(emu: Emulator, name: str) -> str:
    return f"{emu.url}/__capture/{name}"


def test_a_published_message_appears_live_and_shows_its_attempts(
    page: Any, emu: Emulator, client: QStash
) -> None:
    open_live(page, emu, "/__dashboard/messages")
    expect(page.get_by_test_id("no-messages")).to_be_visible()

    url = capture_url(emu, "orders")
    res = client.message.publish_json(url=url, body={"order": 42}, label="checkout")
    message_id = res.message_id

    row = page.locator(f'tr[data-message-id="{message_id}"]')
    expect(row).to_be_visible()  # no reload: the live stream brought it
    expect(row).to_have_attribute("data-state", "delivered")
    expect(row).to_contain_text(url)
    expect(row).to_contain_text("checkout")

    row.get_by_role("link", name=message_id).click()
    expect(page).to_have_url(f"{emu.url}/__dashboard/messages/{message_id}")
    expect(page.get_by_test_id("message-state")).to_have_text("Delivered")
    timeline = page.get_by_test_id("timeline")
    expect(timeline.locator("tr[data-state]")).to_have_count(3)  # CREATED, ACTIVE, DELIVERED
    attempt = page.get_by_test_id("attempt")
    expect(attempt).to_have_count(1)
    expect(attempt.get_by_test_id("attempt-status")).to_have_text("200")
    expect(attempt).to_contain_text('"order": 42')
    claims = attempt.get_by_test_id("claims")
    expect(claims).to_contain_text("Upstash")
    expect(claims.locator("tr", has_text="sub")).to_contain_text(url)
    expect(attempt).to_contain_text("signed with the current key")
    expect(attempt).to_contain_text("body hash matches")


def test_filters_and_search_narrow_the_list(page: Any, emu: Emulator, client: QStash) -> None:
    a = client.message.publish_json(url=capture_url(emu, "a"), body={"kind": "invoice"})
    b = client.message.publish_json(url=capture_url(emu, "b"), body={"kind": "receipt"}, delay="1h")
    open_live(page, emu, "/__dashboard/messages")
    expect(page.locator("tr[data-message-id]")).to_have_count(2)

    page.get_by_test_id("search").fill("receipt")
    page.get_by_test_id("search").press("Enter")
    expect(page.locator("tr[data-message-id]")).to_have_count(1)
    expect(page.locator(f'tr[data-message-id="{b.message_id}"]')).to_contain_text("Delayed")

    page.get_by_test_id("search").fill("")
    page.get_by_test_id("state-filter").select_option("delivered")  # applies at once
    expect(page).to_have_url(
        f"{emu.url}/__dashboard/messages?q=&state=delivered&url=&label=&id=&queue="
    )
    expect(page.locator("tr[data-message-id]")).to_have_count(1)
    expect(page.locator(f'tr[data-message-id="{a.message_id}"]')).to_be_visible()


def test_retry_a_dlq_entry_from_the_page_and_see_it_delivered(
    page: Any, emu: Emulator, client: QStash
) -> None:
    url = capture_url(emu, "flaky")
    emu.faults.add(url, fail_times=1, status=500)
    failed = client.message.publish_json(url=url, body={"try": 1}, retries=0)
    emu.settle()

    open_live(page, emu, "/__dashboard/dlq")
    row = page.locator(f'tr[data-message-id="{failed.message_id}"]')
    expect(row).to_contain_text("500")
    row.get_by_test_id("retry").click()

    expect(page.get_by_test_id("dlq-empty")).to_be_visible()
    assert client.dlq.list().messages == []
    page.goto(emu.url + "/__dashboard/messages?state=delivered")
    delivered = page.locator("tr[data-message-id]")
    expect(delivered).to_have_count(1)
    expect(delivered).to_contain_text(url)
    assert delivered.get_attribute("data-message-id") != failed.message_id  # a new message


def test_bulk_delete_from_the_dlq(page: Any, emu: Emulator, client: QStash) -> None:
    url = capture_url(emu, "down")
    emu.faults.add(url, status=503)
    for n in range(3):
        client.message.publish_json(url=url, body={"n": n}, retries=0)
    emu.settle()
    open_live(page, emu, "/__dashboard/dlq")
    expect(page.locator("tr[data-dlq-id]")).to_have_count(3)
    page.locator('input[name="sel"]').nth(0).check()
    page.locator('input[name="sel"]').nth(2).check()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("bulk-delete").click()
    expect(page.locator("tr[data-dlq-id]")).to_have_count(1)
    assert len(client.dlq.list().messages) == 1


def test_pause_resume_and_trigger_a_schedule(page: Any, emu: Emulator, client: QStash) -> None:
    url = capture_url(emu, "nightly")
    schedule_id = client.schedule.create(destination=url, cron="0 9 * * 1-5", body="report")
    open_live(page, emu, "/__dashboard/schedules")
    row = page.locator(f'tr[data-schedule-id="{schedule_id}"]')
    expect(row.get_by_test_id("cron-words")).to_have_text("at 09:00 on Monday through Friday (UTC)")
    # The emulator's clock starts on Wednesday 2025-01-01.
    expect(row.get_by_test_id("next-times").locator("li")).to_have_text(
        [
            "2025-01-01 09:00:00 UTC",
            "2025-01-02 09:00:00 UTC",
            "2025-01-03 09:00:00 UTC",
            "2025-01-06 09:00:00 UTC",
            "2025-01-07 09:00:00 UTC",
        ]
    )

    row.get_by_test_id("pause").focus()  # by keyboard: the buttons are real buttons
    page.keyboard.press("Enter")
    expect(row).to_have_attribute("data-paused", "true")
    expect(row.get_by_test_id("resume")).to_be_focused()  # focus survives the live update
    assert client.schedule.get(schedule_id).paused is True

    row.get_by_test_id("trigger").click()
    expect(row).to_contain_text("SUCCESS")
    assert [r.text for r in emu_captures(emu, "nightly")] == ["report"]

    row.get_by_test_id("resume").click()
    expect(row).to_have_attribute("data-paused", "false")
    assert client.schedule.get(schedule_id).paused is False


def emu_captures(emu: Emulator, name: str) -> list[Any]:
    return emu.captures.requests(name)


def test_advance_virtual_time_from_the_page_delivers_a_delayed_message(
    page: Any, emu: Emulator, client: QStash
) -> None:
    url = capture_url(emu, "later")
    res = client.message.publish_json(url=url, body={"hello": "later"}, delay="30m")
    open_live(page, emu, "/__dashboard/time")
    expect(page.get_by_test_id("next-due")).to_contain_text("2025-01-01 00:30:00 UTC")

    page.get_by_test_id("advance-1m").click()
    expect(page.get_by_test_id("clock")).to_have_text("2025-01-01 00:01:00 UTC")
    assert emu_captures(emu, "later") == []

    page.get_by_test_id("advance-next").click()
    expect(page.get_by_test_id("clock")).to_have_text("2025-01-01 00:30:00 UTC")
    expect(page.get_by_test_id("next-due")).to_contain_text("nothing is waiting")
    assert [r.json() for r in emu_captures(emu, "later")] == [{"hello": "later"}]

    page.goto(f"{emu.url}/__dashboard/messages/{res.message_id}")
    expect(page.get_by_test_id("message-state")).to_have_text("Delivered")

    page.goto(emu.url + "/__dashboard/time")
    page.get_by_test_id("advance-1d").click()
    expect(page.get_by_test_id("clock")).to_have_text("2025-01-02 00:30:00 UTC")


def test_queue_and_flow_control_pause_and_resume(page: Any, emu: Emulator, client: QStash) -> None:
    client.queue.upsert("emails", parallelism=2)
    client.message.publish_json(
        url=capture_url(emu, "fc"), body={}, flow_control={"key": "tenant-1", "parallelism": 1}
    )
    emu.settle()
    open_live(page, emu, "/__dashboard/queues")
    queue = page.locator('tr[data-queue="emails"]')
    expect(queue).to_contain_text("0 / 2")
    queue.get_by_test_id("pause").click()
    expect(queue).to_contain_text("paused")
    assert client.queue.get("emails").paused is True
    queue.get_by_test_id("resume").click()
    expect(queue).to_contain_text("active")

    key = page.locator('tr[data-key="tenant-1"]')
    key.get_by_test_id("pause").click()
    expect(key).to_contain_text("paused")
    key.get_by_test_id("resume").click()
    expect(key).to_contain_text("active")


def test_switching_users_shows_their_messages(page: Any, emu: Emulator) -> None:
    other = emu.users["testUser1"]
    mine = QStash(emu.token, base_url=emu.url).message.publish_json(
        url=capture_url(emu, "mine"), body={}
    )
    theirs = QStash(other.token, base_url=emu.url).message.publish_json(
        url=capture_url(emu, "theirs"), body={}
    )
    open_live(page, emu, "/__dashboard/messages")
    expect(page.locator(f'tr[data-message-id="{mine.message_id}"]')).to_be_visible()
    page.get_by_test_id("user-switch").select_option("testUser1")
    expect(page.locator(f'tr[data-message-id="{theirs.message_id}"]')).to_be_visible()
    expect(page.locator(f'tr[data-message-id="{mine.message_id}"]')).to_have_count(0)


def test_llm_calls_and_the_empty_workflow_runs_page(page: Any, emu: Emulator) -> None:
    from openai import OpenAI

    emu.llm.reply(contains="capital of Turkey", content="Ankara.", name="capitals")
    ai = OpenAI(base_url=emu.url + "/llm/v1", api_key=emu.token)
    ai.chat.completions.create(
        model="meta-llama/Meta-Llama-3-8B-Instruct",
        messages=[{"role": "user", "content": "What is the capital of Turkey?"}],
    )
    open_live(page, emu, "/__dashboard/llm")
    calls = page.get_by_test_id("llm-calls")
    expect(calls).to_contain_text("capitals")
    expect(calls).to_contain_text("Ankara.")
    page.get_by_role("link", name="Workflow runs").click()
    expect(page.get_by_test_id("no-runs")).to_be_visible()


def test_a_workflow_run_waits_is_notified_from_the_page_and_goes_on(
    page: Any, emu: Emulator
) -> None:
    flow = ProtocolWorkflow(emu.url, emu.token)  # speaks the protocol itself, no SDK
    try:
        open_live(page, emu, "/__dashboard/runs")
        expect(page.get_by_test_id("no-runs")).to_be_visible()
        flow.start("wfr_browser", "approve-42", timeout="7d")

        row = page.locator('tr[data-run-id="wfr_browser"]')
        expect(row).to_be_visible()  # live: the run appeared without a reload
        expect(row).to_contain_text("Running")
        expect(row).to_contain_text("waiting for approve-42")
        expect(row).to_contain_text(flow.url)

        row.get_by_role("link", name="wfr_browser").click()
        expect(page.get_by_test_id("run-state")).to_have_text("Running")
        waiting = page.locator('tr[data-step="approval"]')
        expect(waiting).to_have_attribute("data-step-state", "pending")
        expect(waiting).to_contain_text("for event approve-42")
        waiter = page.get_by_test_id("waiter")
        expect(waiter.get_by_test_id("waiter-event")).to_have_text("approve-42")
        expect(waiter).to_contain_text("2025-01-08 00:00:00 UTC")  # the 7-day deadline

        waiter.get_by_test_id("notify-data").fill('{"approved": true}')
        emu.advance("2h")  # from the test: the page follows the clock over the stream
        expect(page.get_by_test_id("clock")).to_have_text("2025-01-01 02:00:00 UTC")
        expect(waiter).to_contain_text("in 6d 22h")  # re-rendered on the moved clock...
        expect(waiter.get_by_test_id("notify-data")).to_have_value('{"approved": true}')  # kept
        waiter.get_by_test_id("notify").click()

        expect(page.get_by_test_id("run-state")).to_have_text("Succeeded")  # it went on
        approval = page.locator('tr[data-step="approval"]')
        expect(approval).to_have_attribute("data-step-state", "delivered")
        expect(approval).to_contain_text("notified (timeout 7d)")
        expect(approval.get_by_test_id("step-result")).to_contain_text('"approved": true')
        expect(approval.get_by_test_id("step-duration")).to_have_text("2h")
        expect(page.locator('tr[data-step="after"]')).to_contain_text("Done")
        expect(page.get_by_test_id("no-waiters")).to_be_visible()
        expect(page.get_by_test_id("run-response")).to_contain_text("done:")
        assert not flow.errors
    finally:
        flow.close()


def test_a_message_page_follows_the_message_live(page: Any, emu: Emulator, client: QStash) -> None:
    url = capture_url(emu, "soon")
    emu.faults.add(url, fail_times=1, status=502)
    res = client.message.publish_json(url=url, body={"n": 1}, delay="10m", retries=2)
    open_live(page, emu, f"/__dashboard/messages/{res.message_id}")
    expect(page.get_by_test_id("message-state")).to_have_text("Delayed")
    expect(page.get_by_test_id("no-attempts")).to_be_visible()

    emu.advance("10m")  # from the test, not the page: the page hears of it over the stream
    expect(page.get_by_test_id("clock")).to_have_text("2025-01-01 00:10:00 UTC")
    expect(page.get_by_test_id("message-state")).to_have_text("Waiting for retry")
    expect(page.get_by_test_id("attempt-status")).to_have_text("502")

    emu.run_until_idle()
    expect(page.get_by_test_id("message-state")).to_have_text("Delivered")
    expect(page.get_by_test_id("attempt")).to_have_count(2)
    expect(page.get_by_test_id("attempt").nth(1).get_by_test_id("attempt-status")).to_have_text(
        "200"
    )


# -- the README's screenshots -------------------------------------------------------------------
# Taken from a representative emulator state on every run (so the pages they show are checked to
# render); a file in docs/ is rewritten only when the picture changed. For pictures that are the
# same on every run, the emulator takes a fixed port when it is free, the app's URLs are
# rewritten to it (as an app that publishes production URLs would do), the signing clock follows
# the virtual clock, and the response's Date header is masked.

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

    run_id = order_workflow(emu)
    open_live(page, emu, f"/__dashboard/runs/{run_id}")
    expect(page.get_by_test_id("waiter")).to_have_count(1)
    expect(page.locator("tr[data-step]")).to_have_count(4)
    save(page, "run", full_page=True)


def order_workflow(emu: Emulator) -> str:
    """A run part of the way through, its steps sent as an SDK sends them: a step, a sleep,
    then a wait for the shipment."""
    import json

    import httpx

    url, run_id = f"{APP}/workflows/order", "wfr_order_1042"
    headers = {
        "Authorization": f"Bearer {emu.token}",
        "Content-Type": "application/json",
        "Upstash-Workflow-RunId": run_id,
        "Upstash-Workflow-Url": url,
        "Upstash-Workflow-Init": "false",
        "Upstash-Forward-Upstash-Workflow-Sdk-Version": "1",
    }

    def send(path: str, body: object, **extra: str) -> None:
        answer = httpx.post(
            emu.url + path, content=json.dumps(body), headers={**headers, **extra}, timeout=10
        )
        assert answer.status_code == 200, answer.text

    def step(n: int, name: str, kind: str, **fields: object) -> dict[str, object]:
        return {"stepId": n, "stepName": name, "stepType": kind, "concurrent": 1, **fields}

    send(
        f"/v2/publish/{url}", {"orderId": 1042, "total": 1999}, **{"Upstash-Workflow-Init": "true"}
    )
    emu.advance("1s")
    send(f"/v2/publish/{url}", step(1, "charge", "Run", out=json.dumps({"charge": "ch_1"})))
    emu.advance("2s")
    send(
        f"/v2/publish/{url}",
        step(2, "cool-off", "SleepFor", sleepFor=600),
        **{"Upstash-Delay": "600s"},
    )
    emu.advance("10m")
    waiting = step(3, "shipment", "Wait")
    send("/v2/wait/shipped-1042", {"url": url, "timeout": "3d", "step": waiting})
    emu.advance("1h")
    return run_id
