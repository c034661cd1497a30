"""Workflow runs of the official JS SDK (express, under node) in virtual time, through the
plugin's helpers: parallel steps, and waits that end by notify or by a one-week timeout, each
in one `advance`."""

from __future__ import annotations

import httpx
from conftest import JsWorkflowApp
from pytest_qstash import QStashHarness


def test_parallel_steps(qstash: QStashHarness, js_workflow_app: JsWorkflowApp) -> None:
    run_id = qstash.trigger_workflow(js_workflow_app.url("/parallel"))
    qstash.advance("1s")

    run = qstash.assert_workflow_completed(run_id)
    assert [s.name for s in run.steps] == ["init", "p1", "p2", "p3", "sum"]
    assert [s.concurrent for s in run.steps[1:4]] == [3, 3, 3]
    assert run.step("sum").result == 321
    assert js_workflow_app.seen()[run_id] == {"sum": 321}


def test_a_notified_wait_goes_on_with_the_event_data(
    qstash: QStashHarness, js_workflow_app: JsWorkflowApp
) -> None:
    url = js_workflow_app.url("/wait")
    run_id = qstash.trigger_workflow(url, {"eventId": "approval-1", "timeout": "7d"})
    qstash.advance("1h")
    [waiter] = qstash.waiters("approval-1")
    assert waiter["url"] == url
    assert waiter["deadline"] == int(qstash.started + 7 * 86400)
    assert qstash.workflow_run(run_id).waiting_for == ["approval-1"]

    [answer] = qstash.notify("approval-1", {"approved": True})
    assert answer["waiter"]["url"] == url and answer["messageId"]
    qstash.advance("1s")

    run = qstash.assert_workflow_completed(run_id, steps=["approval", "after"])
    assert run.step("approval").result == {"timeout": False, "event_data": {"approved": True}}
    assert js_workflow_app.seen()[run_id]["got"] == {
        "eventData": {"approved": True},
        "timeout": False,
    }
    assert qstash.waiters("approval-1") == []
    assert qstash.notify("approval-1", "again") == []  # nobody waits any more


def test_a_one_week_wait_times_out_in_one_advance(
    qstash: QStashHarness, js_workflow_app: JsWorkflowApp
) -> None:
    run_id = qstash.trigger_workflow(
        js_workflow_app.url("/wait"), {"eventId": "never", "timeout": "7d"}
    )
    qstash.advance("7d")

    run = qstash.assert_workflow_completed(run_id, steps=["approval", "after"])
    assert run.step("approval").result == {"timeout": True, "event_data": None}
    assert run.step("after").result == "timed out"
    assert run.completed_at == qstash.started + 7 * 86400


def test_a_run_scoped_notify_before_the_wait_is_kept_a_plain_one_is_lost(
    qstash: QStashHarness, js_workflow_app: JsWorkflowApp
) -> None:
    url = js_workflow_app.url("/wait")
    # Held back a minute: neither run has started, so neither waits yet.
    kept = qstash.trigger_workflow(url, {"eventId": "early", "timeout": "1d"}, delay="1m")
    lost = qstash.trigger_workflow(url, {"eventId": "early-plain", "timeout": "1d"}, delay="1m")
    assert qstash.notify("early", {"n": 1}, run_id=kept) == []
    assert qstash.notify("early-plain", {"n": 2}) == []
    qstash.advance("1d1m")  # both start, then the plain one's wait times out

    assert qstash.workflow_run(kept).step("approval").result == {
        "timeout": False,
        "event_data": {"n": 1},
    }
    assert qstash.workflow_run(lost).step("approval").result["timeout"] is True


def test_one_run_notifies_another_with_context_notify(
    qstash: QStashHarness, js_workflow_app: JsWorkflowApp
) -> None:
    waiting = qstash.trigger_workflow(
        js_workflow_app.url("/wait"), {"eventId": "handoff", "timeout": "1d"}
    )
    qstash.advance("1s")
    notifier = qstash.trigger_workflow(js_workflow_app.url("/notifier"), {"eventId": "handoff"})
    qstash.advance("1s")

    qstash.assert_workflow_completed(notifier, steps=["tell"])
    assert js_workflow_app.seen()[notifier] == {"notified": 1}
    run = qstash.assert_workflow_completed(waiting, steps=["approval", "after"])
    assert run.step("approval").result == {
        "timeout": False,
        "event_data": {"from": "another run"},
    }


def test_a_webhook_call_resumes_the_run_waiting_for_it(
    qstash: QStashHarness, js_workflow_app: JsWorkflowApp
) -> None:
    run_id = qstash.trigger_workflow(js_workflow_app.url("/webhook"))
    qstash.advance("1s")
    hook = js_workflow_app.seen()[run_id]["webhookUrl"]
    assert hook.startswith(f"{qstash.url}/v2/workflows/hooks/defaultUser/{run_id}/")

    # A third party calls the URL: no token, any method and body.
    answer = httpx.put(hook, content=b"paid", headers={"X-Tag": "invoice-7"})
    assert answer.status_code == 200
    qstash.advance("1s")

    qstash.assert_workflow_completed(run_id, steps=["hook", "share", "called", "handled"])
    assert js_workflow_app.seen()[run_id]["call"] == {
        "method": "PUT",
        "body": "paid",
        "tag": "invoice-7",
    }


def test_an_invoked_workflow_answers_its_invoker(
    qstash: QStashHarness, js_workflow_app: JsWorkflowApp
) -> None:
    parent = qstash.trigger_workflow(js_workflow_app.url("/many/parent"), {"n": 21})
    qstash.advance("1s")

    qstash.assert_workflow_completed(parent, steps=["ask-child", "use"])
    [child] = qstash.workflow_runs(url=js_workflow_app.url("/many/child"))
    assert child.payload == {"n": 21, "fail": False}
    qstash.assert_workflow_completed(child.id, result={"doubled": 42})
    assert js_workflow_app.seen()[parent]["answer"] == {
        "body": {"doubled": 42},
        "isFailed": False,
        "isCanceled": False,
    }
    # The child's log names its invoker, as the JS client's WorkflowRunLog has it.
    logs = httpx.get(
        f"{qstash.url}/v2/workflows/events",
        params={"workflowRunId": child.id},
        headers={"Authorization": f"Bearer {qstash.token}"},
    ).json()
    [parent_run] = qstash.workflow_runs(url=js_workflow_app.url("/many/parent"))
    assert logs["runs"][0]["invoker"] == {
        "workflowRunId": parent,
        "workflowUrl": js_workflow_app.url("/many/parent"),
        "workflowRunCreatedAt": round(parent_run.created_at * 1000),
    }


def test_an_invoked_workflow_that_fails_tells_its_invoker(
    qstash: QStashHarness, js_workflow_app: JsWorkflowApp
) -> None:
    parent = qstash.trigger_workflow(js_workflow_app.url("/many/parent"), {"n": 1, "fail": True})
    qstash.advance("1s")

    [child] = qstash.workflow_runs(url=js_workflow_app.url("/many/child"))
    qstash.assert_workflow_failed(child.id)
    qstash.assert_workflow_completed(parent)
    assert js_workflow_app.seen()[parent]["answer"]["isFailed"] is True
