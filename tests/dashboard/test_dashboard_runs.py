"""The workflow runs pages over plain HTTP: the list and its filters, a run's timeline and
waiters, notify and cancel (the REST API's calls, key-checked), bad input."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from protocol_workflow import ProtocolWorkflow
from qstash_emulator import Emulator
from qstash_emulator.dashboard.security import HEADER
from test_dashboard_http import session


@pytest.fixture
def flow(emu: Emulator) -> Iterator[ProtocolWorkflow]:
    app = ProtocolWorkflow(emu.url, emu.token)
    yield app
    app.close()
    assert not app.errors


def api(emu: Emulator, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {emu.token}", **kwargs.pop("headers", {})}
    return httpx.request(method, emu.url + path, headers=headers, timeout=10, **kwargs)


def logged_run(emu: Emulator, run_id: str) -> dict[str, Any]:
    [run] = api(emu, "GET", "/v2/workflows/events", params={"workflowRunId": run_id}).json()["runs"]
    return dict(run)


def page(emu: Emulator, path: str) -> str:
    answer = httpx.get(emu.url + path)
    assert answer.status_code == 200, answer.text
    return html.unescape(answer.text)


def test_a_waiting_run_is_listed_and_shows_its_steps_and_waiter(
    emu: Emulator, flow: ProtocolWorkflow
) -> None:
    flow.start("wfr_one", "approve-1", timeout="7d")
    emu.settle()
    emu.advance("1h")

    listing = page(emu, "/__dashboard/runs")
    assert 'data-run-id="wfr_one" data-state="RUN_STARTED"' in listing
    assert flow.url in listing and "waiting for approve-1" in listing
    assert 'data-testid="count-RUN_STARTED">Running <b>1</b>' in listing

    run = page(emu, "/__dashboard/runs/wfr_one")
    assert 'data-testid="run-state">Running' in run
    assert 'data-step="init" data-step-state="delivered"' in run
    assert '"timeout": "7d"' in run  # the payload, as the init step's result
    assert 'data-step="approval" data-step-state="pending"' in run
    assert "for event approve-1" in run and "times out after 7d" in run
    assert 'data-testid="waiter-event">approve-1' in run
    assert "2025-01-08 00:00:00 UTC" in run  # the waiter's deadline on the virtual clock
    assert 'data-testid="cancel-run"' in run
    # The run's messages link back to it.
    init_id = logged_run(emu, "wfr_one")["steps"][0]["steps"][0]["messageId"]
    message = page(emu, f"/__dashboard/messages/{init_id}")
    assert 'href="/__dashboard/runs/wfr_one" data-testid="message-run"' in message


def test_notify_from_the_dashboard_resumes_the_run_as_the_api_would(
    emu: Emulator, flow: ProtocolWorkflow
) -> None:
    flow.start("wfr_two", "approve-2")
    emu.settle()
    emu.advance("30m")
    http, key = session(emu)
    path = "/__dashboard/api/workflows/notify"
    body = {"eventId": "approve-2", "data": '{"ok": true}', "runId": "wfr_two"}

    refused = http.post(path, json=body)  # no key: nothing is notified
    assert refused.status_code == 403
    assert api(emu, "GET", "/v2/waiters/approve-2").json() != []

    done = http.post(path, json=body, headers={HEADER: key})
    assert done.status_code == 200, done.text
    assert done.json()["message"] == "notified approve-2: 1 waiter(s) resumed"
    [message_id] = done.json()["messageIds"]
    emu.settle()

    run = logged_run(emu, "wfr_two")
    assert run["workflowState"] == "RUN_SUCCESS"
    assert run["workflowRunResponse"] == json.dumps('done: {"ok": true}')
    steps = [s for g in run["steps"] for s in g["steps"]]
    assert [s["stepName"] for s in steps] == ["init", "approval", "after"]
    assert steps[1]["messageId"] == message_id
    assert api(emu, "GET", "/v2/waiters/approve-2").json() == []

    shown = page(emu, "/__dashboard/runs/wfr_two")
    assert 'data-testid="run-state">Succeeded' in shown
    assert 'data-step="approval" data-step-state="delivered"' in shown
    assert "notified (timeout 1d)" in shown
    assert shown.count('data-testid="step-duration">30m<') == 1  # the wait lasted 30 min
    assert '"ok": true' in shown  # the event's data, the wait's result
    assert 'data-testid="no-waiters"' in shown and 'data-testid="cancel-run"' not in shown


def test_notify_without_a_waiter_says_what_became_of_the_event(
    emu: Emulator, flow: ProtocolWorkflow
) -> None:
    http, key = session(emu)
    path = "/__dashboard/api/workflows/notify"
    lost = http.post(path, json={"eventId": "nobody", "data": "x"}, headers={HEADER: key})
    assert lost.json()["message"] == "nobody waits for nobody: the event is lost"

    flow.start("wfr_early", "later-event")
    kept = http.post(
        path,
        json={"eventId": "sooner", "data": "x", "runId": "wfr_early"},
        headers={HEADER: key},
    )
    assert kept.json()["message"] == (
        "run wfr_early does not wait for sooner yet: kept for its next wait"
    )
    assert "notified for this run before it waited" in page(emu, "/__dashboard/runs/wfr_early")


def test_cancel_from_the_dashboard_cancels_the_run_and_its_waiter(
    emu: Emulator, flow: ProtocolWorkflow
) -> None:
    flow.start("wfr_three", "approve-3")
    emu.settle()
    http, key = session(emu)
    path = "/__dashboard/api/runs/wfr_three/cancel"
    assert http.post(path).status_code == 403
    assert logged_run(emu, "wfr_three")["workflowState"] == "RUN_STARTED"

    done = http.post(path, headers={HEADER: key})
    assert done.status_code == 200 and done.json()["message"] == "cancelled workflow run wfr_three"
    assert logged_run(emu, "wfr_three")["workflowState"] == "RUN_CANCELED"
    assert api(emu, "GET", "/v2/waiters/approve-3").json() == []
    again = http.post(path, headers={HEADER: key})  # as the API: a run that is over is a 400
    assert again.status_code == 400 and "RUN_CANCELED" in again.json()["error"]
    assert 'data-testid="run-state">Cancelled' in page(emu, "/__dashboard/runs/wfr_three")


def test_cancelling_a_sleeping_run_cancels_its_pending_step(emu: Emulator) -> None:
    capture = f"{emu.url}/__capture/sleepy"
    headers = {
        "Content-Type": "application/json",
        "Upstash-Workflow-RunId": "wfr_sleep",
        "Upstash-Workflow-Url": capture,
    }
    api(
        emu,
        "POST",
        f"/v2/publish/{capture}",
        content="{}",
        headers={**headers, "Upstash-Workflow-Init": "true"},
    )
    emu.settle()
    nap = {
        "stepId": 1,
        "stepName": "nap",
        "stepType": "SleepFor",
        "sleepFor": 3600,
        "concurrent": 1,
    }
    sleeping = api(
        emu,
        "POST",
        f"/v2/publish/{capture}",
        content=json.dumps(nap),
        headers={**headers, "Upstash-Workflow-Init": "false", "Upstash-Delay": "1h"},
    )
    nap_id = sleeping.json()["messageId"]
    emu.advance("10m")
    shown = page(emu, "/__dashboard/runs/wfr_sleep")
    assert 'data-step="nap" data-step-state="delayed"' in shown
    assert "sleep for 1h" in shown and "wakes 2025-01-01 01:00:00 UTC" in shown

    http, key = session(emu)
    assert (
        http.post("/__dashboard/api/runs/wfr_sleep/cancel", headers={HEADER: key}).status_code
        == 200
    )
    states = [
        log["state"]
        for log in api(emu, "GET", "/v2/logs", params={"messageId": nap_id}).json()["logs"]
    ]
    assert states[0] == "CANCELED"  # logged like the API's cancel
    emu.advance("1h")
    assert len(emu.captures.requests("sleepy")) == 1  # only the start was delivered


def test_parallel_steps_and_a_failed_run(emu: Emulator) -> None:
    capture = f"{emu.url}/__capture/par"
    headers = {
        "Content-Type": "application/json",
        "Upstash-Workflow-RunId": "wfr_par",
        "Upstash-Workflow-Url": capture,
        "Upstash-Workflow-Init": "false",
    }

    def send(body: Any, **extra: str) -> None:
        sent = api(
            emu,
            "POST",
            f"/v2/publish/{capture}",
            content=json.dumps(body),
            headers={**headers, **extra},
        )
        assert sent.status_code == 200, sent.text

    send({"a": 1}, **{"Upstash-Workflow-Init": "true"})
    emu.advance("1s")
    for target in (1, 2):  # the parallel plan: each step runs in its own delivery
        plan = {"stepId": 0, "stepName": f"p{target}", "stepType": "Run", "concurrent": 2}
        send({**plan, "targetStep": target})
    emu.advance("1s")
    send({"stepId": 2, "stepName": "p2", "stepType": "Run", "concurrent": 2, "out": "20"})
    emu.advance("3s")
    send({"stepId": 1, "stepName": "p1", "stepType": "Run", "concurrent": 2, "out": "10"})
    emu.faults.add(capture, status=500, body="step exploded")
    sum_step = {"stepId": 3, "stepName": "sum", "stepType": "Run", "concurrent": 1, "out": "30"}
    send(sum_step, **{"Upstash-Retries": "1"})
    emu.run_until_idle()

    shown = page(emu, "/__dashboard/runs/wfr_par")
    assert 'data-testid="run-state">Failed' in shown
    rows = shown.split('<tr data-step="')[1:]
    assert [r.split('"', 1)[0] for r in rows] == ["init", "p1", "p2", "sum", "after sum"]
    assert shown.count("parallel \u00d72") == 2  # the results; the plan steps are not steps
    p1 = rows[1]
    assert 'data-testid="step-duration">4s<' in p1  # from its plan's delivery to its result
    failed = rows[4]
    assert 'data-step-state="failed"' in failed and "2 failed attempt(s)" in failed
    assert failed.count('data-testid="step-error"') == 2 and "step exploded" in failed
    assert "DLQ entry" in shown
    listing = page(emu, "/__dashboard/runs?state=RUN_FAILED")
    assert 'data-run-id="wfr_par"' in listing
    assert listing.split('data-testid="run-steps">', 1)[1].startswith("3<")  # p1, p2, sum


def test_the_list_filters_by_state_and_url(emu: Emulator, flow: ProtocolWorkflow) -> None:
    flow.start("wfr_a", "ea")
    flow.start("wfr_b", "eb")
    emu.settle()
    http, key = session(emu)
    http.post("/__dashboard/api/runs/wfr_b/cancel", headers={HEADER: key})

    cancelled = page(emu, "/__dashboard/runs?state=RUN_CANCELED")
    assert 'data-run-id="wfr_b"' in cancelled and 'data-run-id="wfr_a"' not in cancelled
    assert "1 run match" in cancelled
    by_url = page(emu, "/__dashboard/runs?url=APPROVAL")  # a case-blind part of the URL
    assert by_url.count("data-run-id=") == 2
    none = page(emu, "/__dashboard/runs?url=elsewhere")
    assert 'data-testid="no-runs"' in none and "match this filter" in none
    for odd in ("state=DONE", "page=x", "page=-1", "url=%00"):
        assert httpx.get(f"{emu.url}/__dashboard/runs?{odd}").status_code == 200


def test_the_list_pages_through_many_runs(emu: Emulator) -> None:
    capture = f"{emu.url}/__capture/many"
    for n in range(55):
        api(
            emu,
            "POST",
            f"/v2/publish/{capture}",
            content="{}",
            headers={"Upstash-Workflow-Init": "true", "Upstash-Workflow-RunId": f"wfr_{n:03d}"},
        )
    first, second = page(emu, "/__dashboard/runs"), page(emu, "/__dashboard/runs?page=1")
    assert first.count("data-run-id=") == 50 and "55 runs · page 1 of 2" in first
    assert second.count("data-run-id=") == 5 and 'data-run-id="wfr_000"' in second


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/__dashboard/api/runs/wfr_nope/cancel", {}, 404),
        ("/__dashboard/api/workflows/notify", {}, 400),
        ("/__dashboard/api/workflows/notify", {"eventId": " "}, 400),
        ("/__dashboard/api/workflows/notify", {"eventId": "e", "data": {"a": 1}}, 400),
        ("/__dashboard/api/workflows/notify", {"eventId": "e", "runId": 5}, 400),
        ("/__dashboard/api/workflows/notify", {"eventId": "e", "runId": "wfr_nope"}, 404),
        ("/__dashboard/api/workflows/notify", ["e"], 400),
    ],
)
def test_bad_run_actions_answer_json_errors(
    emu: Emulator, flow: ProtocolWorkflow, path: str, body: Any, status: int
) -> None:
    flow.start("wfr_kept", "e")
    emu.settle()
    http, key = session(emu)
    response = http.post(path, json=body, headers={HEADER: key})
    assert response.status_code == status, response.text
    assert isinstance(response.json()["error"], str)
    assert logged_run(emu, "wfr_kept")["workflowState"] == "RUN_STARTED"
    assert len(api(emu, "GET", "/v2/waiters/e").json()) == 1  # still waiting: nothing changed


def test_an_unknown_run_page_is_a_404(emu: Emulator) -> None:
    answer = httpx.get(f"{emu.url}/__dashboard/runs/wfr_nope")
    assert answer.status_code == 404
    assert answer.json() == {"error": "workflow run wfr_nope not found"}
