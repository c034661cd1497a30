"""Workflow runs of the official Python SDK in virtual time, through the plugin's helpers:
each run finishes in one `advance`, however long it sleeps or retries."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pytest_qstash import QStashHarness
from sdk_app import WorkflowApp
from upstash_workflow import AsyncWorkflowContext

Ctx = AsyncWorkflowContext[Any]


def test_sequential_steps(qstash: QStashHarness, workflow_app: WorkflowApp) -> None:
    @workflow_app.route("/seq")
    async def seq(context: Ctx) -> None:
        async def a() -> str:
            return f"A:{context.request_payload['n']}"

        first = await context.run("a", a)

        async def b() -> dict[str, str]:
            return {"joined": first + "+B"}

        await context.run("b", b)

    workflow_app.start()
    run_id = qstash.trigger_workflow(workflow_app.url("/seq"), {"n": 7})
    qstash.advance("1s")

    run = qstash.assert_workflow_completed(run_id, steps=["a", "b"])
    assert run.payload == {"n": 7}
    assert run.step("a").result == "A:7"
    assert run.step("b").result == {"joined": "A:7+B"}
    # Every step was a signed delivery to the workflow URL, answered 200.
    deliveries = qstash.assert_delivered(workflow_app.url("/seq"), times=3, status=200)
    assert all(d.header("Upstash-Workflow-RunId") == run_id for d in deliveries)


def test_a_one_day_sleep_ends_in_one_advance(
    qstash: QStashHarness, workflow_app: WorkflowApp
) -> None:
    @workflow_app.route("/sleep")
    async def sleeping(context: Ctx) -> None:
        await context.run("before", lambda: "before")
        await context.sleep("nap", "1d")
        await context.run("after", lambda: "after")

    workflow_app.start()
    run_id = qstash.trigger_workflow(workflow_app.url("/sleep"))
    qstash.advance("23h")
    assert qstash.workflow_run(run_id).state == "RUN_STARTED"
    assert [s.name for s in qstash.workflow_run(run_id).steps] == ["init", "before", "nap"]
    qstash.advance("1h")

    run = qstash.assert_workflow_completed(run_id, steps=["before", "nap", "after"])
    assert run.step("after").time - run.step("before").time == 86400
    assert run.completed_at == qstash.started + 86400


def test_sleep_until_wakes_at_the_given_time(
    qstash: QStashHarness, workflow_app: WorkflowApp
) -> None:
    wake = qstash.started + 5 * 3600

    @workflow_app.route("/until")
    async def until(context: Ctx) -> None:
        await context.sleep_until("until", wake)
        await context.run("awake", lambda: "up")

    workflow_app.start()
    run_id = qstash.trigger_workflow(workflow_app.url("/until"))
    qstash.advance("6h")

    run = qstash.assert_workflow_completed(run_id, steps=["until", "awake"])
    assert run.step("awake").time == wake


def test_call_returns_the_api_answer(qstash: QStashHarness, workflow_app: WorkflowApp) -> None:
    api = qstash.capture(status=201, body={"id": "img-1"})

    @workflow_app.route("/call")
    async def calling(context: Ctx) -> None:
        answer = await context.call(
            "create", url=api.url, method="POST", body={"prompt": "cat"}, headers={"X-Key": "k"}
        )
        workflow_app.record(context, status=answer.status, body=answer.body)

    workflow_app.start()
    run_id = qstash.trigger_workflow(workflow_app.url("/call"))
    qstash.advance("1s")

    run = qstash.assert_workflow_completed(run_id, steps=["create"])
    assert workflow_app.seen[run_id] == {"status": 201, "body": {"id": "img-1"}}
    assert run.step("create").result["status"] == 201
    [request] = qstash.assert_delivered(api, json={"prompt": "cat"}, headers={"X-Key": "k"})
    assert request.method == "POST"


def test_a_failing_call_is_retried_and_its_last_answer_reaches_the_run(
    qstash: QStashHarness, workflow_app: WorkflowApp
) -> None:
    api = qstash.capture(status=503, body="busy")

    @workflow_app.route("/call")
    async def calling(context: Ctx) -> None:
        answer = await context.call("flaky", url=api.url, retries=2)
        workflow_app.record(context, status=answer.status)

    workflow_app.start()
    run_id = qstash.trigger_workflow(workflow_app.url("/call"))
    qstash.advance("3m")  # QStash's backoff: e^2.5 s, then e^5 s

    qstash.assert_workflow_completed(run_id)
    assert workflow_app.seen[run_id] == {"status": 503}
    times = [round(d.time - qstash.started, 2) for d in qstash.deliveries(api)]
    assert times == [0.0, 12.18, 160.6]


def test_a_failed_step_runs_the_failure_function(
    qstash: QStashHarness, workflow_app: WorkflowApp
) -> None:
    failures: list[tuple[int, str, Any]] = []

    async def on_failure(context: Ctx, status: int, response: str, headers: Any) -> None:
        failures.append((status, response, context.request_payload))

    @workflow_app.route("/fail", failure_function=on_failure, retries=1)
    async def failing(context: Ctx) -> None:
        async def boom() -> None:
            raise RuntimeError("no luck")

        await context.run("boom", boom)

    workflow_app.start()
    url = workflow_app.url("/fail")
    run_id = qstash.trigger_workflow(url, {"order": 42}, retries=1, failure_url=url)
    qstash.advance("1m")  # one retry after e^2.5 s

    run = qstash.assert_workflow_failed(run_id, failure_function=True)
    assert failures == [(500, "no luck", {"order": 42})]
    assert run.dlq_id is not None
    # Every delivery of the run verified with the official Receiver's keys, the failure
    # callback included (assert_delivered checks signatures).
    qstash.assert_delivered(url, times=3)
    [callback] = qstash.assert_delivered(url, kind="failure_callback", times=1)
    assert callback.json()["workflowRunId"] == run_id
    assert callback.header("Upstash-Workflow-Is-Failure") == "true"


def test_a_cancelled_run_goes_no_further(qstash: QStashHarness, workflow_app: WorkflowApp) -> None:
    @workflow_app.route("/cancel")
    async def cancelled(context: Ctx) -> None:
        await context.run("first", lambda: 1)
        await context.sleep("long", "7d")
        await context.run("never", lambda: workflow_app.record(context, never=True))

    workflow_app.start()
    run_id = qstash.trigger_workflow(workflow_app.url("/cancel"))
    qstash.advance("1m")
    qstash.cancel_workflow(run_id)
    qstash.advance("8d")

    run = qstash.workflow_run(run_id)
    assert run.state == "RUN_CANCELED"
    assert [s.name for s in run.steps] == ["init", "first", "long"]
    assert run_id not in workflow_app.seen


def test_runs_are_listed_per_url_and_their_ids_follow_the_seed(
    qstash: QStashHarness, workflow_app: WorkflowApp
) -> None:
    @workflow_app.route("/one")
    async def one(context: Ctx) -> None:
        await context.run("only", lambda: "x")

    @workflow_app.route("/two")
    async def two(context: Ctx) -> None:
        await context.run("only", lambda: "y")

    workflow_app.start()
    first = qstash.trigger_workflow(workflow_app.url("/one"))
    second = qstash.trigger_workflow(workflow_app.url("/two"))
    qstash.advance("1s")
    assert [r.id for r in qstash.workflow_runs(url=workflow_app.url("/one"))] == [first]
    assert [r.id for r in qstash.workflow_runs()] == [first, second]

    qstash.emulator.reset(seed=qstash.emulator.backend.ids.seed)
    assert qstash.workflow_runs() == []
    assert qstash.trigger_workflow(workflow_app.url("/one")) == first  # same seed, same id


@pytest.mark.qstash(auto_advance=True)
def test_wait_for_run_drives_a_sleeping_run_to_the_end(
    qstash: QStashHarness, workflow_app: WorkflowApp
) -> None:
    @workflow_app.route("/sleep")
    async def sleeping(context: Ctx) -> None:
        await context.sleep("nap", "3d")
        await context.run("done", lambda: "woke")

    workflow_app.start()
    run_id = qstash.trigger_workflow(workflow_app.url("/sleep"))
    run = qstash.wait_for_run(run_id)
    assert run.state == "RUN_SUCCESS"
    assert run.step("done").result == "woke"
    assert qstash.now - qstash.started == 3 * 86400


def test_assertion_messages_show_the_run_so_far(
    qstash: QStashHarness, workflow_app: WorkflowApp
) -> None:
    @workflow_app.route("/slow")
    async def slow(context: Ctx) -> None:
        await context.run("first", lambda: {"step": 1})
        await context.sleep("nap", "1h")

    workflow_app.start()
    run_id = qstash.trigger_workflow(workflow_app.url("/slow"), {"n": 1})
    qstash.advance("1s")
    with pytest.raises(AssertionError) as info:
        qstash.assert_workflow_completed(run_id)
    text = str(info.value)
    assert f"expected workflow run {run_id} to be RUN_SUCCESS, it is RUN_STARTED" in text
    assert "#1 'first' (Run) at t=+0s -> {\"step\": 1}" in text
    assert "#2 'nap' (SleepFor)" in text
    assert "messages on their way" in text
    assert "advance(...)" in text
    with pytest.raises(AssertionError, match="ran steps"):
        qstash.advance("1h")
        qstash.assert_workflow_completed(run_id, steps=["first"])


def test_a_failed_run_is_resumed_or_restarted_from_the_workflow_dlq(
    qstash: QStashHarness, workflow_app: WorkflowApp
) -> None:
    state = {"broken": True, "a": 0}

    @workflow_app.route("/flaky")
    async def flaky(context: Ctx) -> None:
        async def a() -> str:
            state["a"] += 1
            return "a done"

        await context.run("a", a)

        async def b() -> str:
            if state["broken"]:
                raise RuntimeError("b is broken")
            return "b done"

        await context.run("b", b)

    workflow_app.start()
    url = workflow_app.url("/flaky")
    first = qstash.trigger_workflow(url, {"try": 1}, retries=0)
    second = qstash.trigger_workflow(url, {"try": 2}, retries=0)
    qstash.advance("1s")
    failed = [qstash.assert_workflow_failed(first), qstash.assert_workflow_failed(second)]
    assert state["a"] == 2

    def api(method: str, path: str, **params: Any) -> Any:
        answer = httpx.request(
            method,
            qstash.url + path,
            params=params,
            headers={"Authorization": f"Bearer {qstash.token}"},
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    listed = api("GET", "/v2/dlq", source="workflow")["messages"]
    assert {m["workflowRunId"] for m in listed} == {first, second}
    assert all(m["workflowUrl"] == url and m["responseStatus"] == 500 for m in listed)

    state["broken"] = False
    [resumed] = api("POST", "/v2/workflows/dlq/resume", dlqIds=failed[0].dlq_id)["workflowRuns"]
    [restarted] = api("POST", "/v2/workflows/dlq/restart", dlqIds=failed[1].dlq_id)["workflowRuns"]
    qstash.advance("1s")

    # Resume keeps the steps that had run ("a" ran once for it); restart runs them all again.
    run = qstash.assert_workflow_completed(resumed["workflowRunId"], steps=["a", "b"])
    assert run.payload == {"try": 1}
    again = qstash.assert_workflow_completed(restarted["workflowRunId"], steps=["a", "b"])
    assert again.payload == {"try": 2}
    assert state["a"] == 3
    assert api("GET", "/v2/dlq", source="workflow")["messages"] == []
    missing = httpx.post(
        qstash.url + "/v2/workflows/dlq/resume",
        params={"dlqIds": failed[0].dlq_id},
        headers={"Authorization": f"Bearer {qstash.token}"},
    )
    assert missing.status_code == 404 and "not found" in missing.json()["error"]


def test_a_failed_failure_function_is_sent_again_from_the_workflow_dlq(
    qstash: QStashHarness, workflow_app: WorkflowApp
) -> None:
    calls: list[str] = []

    async def on_failure(context: Ctx, status: int, response: str, headers: Any) -> None:
        calls.append(response)
        if len(calls) == 1:
            raise RuntimeError("the failure function fails too")

    @workflow_app.route("/fail", failure_function=on_failure, retries=0)
    async def failing(context: Ctx) -> None:
        async def boom() -> None:
            raise RuntimeError("no luck")

        await context.run("boom", boom)

    workflow_app.start()
    url = workflow_app.url("/fail")
    run_id = qstash.trigger_workflow(url, retries=0, failure_url=url)
    qstash.advance("1s")
    with pytest.raises(AssertionError, match="is CALLBACK_FAIL"):
        qstash.assert_workflow_failed(run_id, failure_function=True)
    dlq_id = qstash.workflow_run(run_id).dlq_id

    answer = httpx.post(
        f"{qstash.url}/v2/workflows/dlq/callback/{dlq_id}",
        headers={"Authorization": f"Bearer {qstash.token}"},
    )
    assert answer.status_code == 200 and answer.json()["workflowRunId"] == run_id
    qstash.advance("1s")
    qstash.assert_workflow_failed(run_id, failure_function=True)
    assert calls == ["no luck", "no luck"]
    again = httpx.post(
        f"{qstash.url}/v2/workflows/dlq/callback/{dlq_id}",
        headers={"Authorization": f"Bearer {qstash.token}"},
    )
    assert again.status_code == 400 and "CALLBACK_SUCCESS" in again.json()["error"]


def test_only_the_newest_finished_runs_are_kept_and_failed_ones_the_dlq_holds(
    qstash: QStashHarness, workflow_app: WorkflowApp
) -> None:
    # A long session ends many runs: each user keeps its newest finished ones (a tenth of the
    # log history by default; two here), and a failed run while the workflow DLQ holds it.
    qstash.emulator.backend.workflows.keep_finished = 2

    @workflow_app.route("/done")
    async def done(context: Ctx) -> None:
        await context.run("only", lambda: "ok")

    @workflow_app.route("/broken")
    async def broken(context: Ctx) -> None:
        async def fail() -> str:
            raise RuntimeError("broken")

        await context.run("fail", fail)

    workflow_app.start()
    failed = qstash.trigger_workflow(workflow_app.url("/broken"), retries=0)
    qstash.advance("1s")
    qstash.assert_workflow_failed(failed)
    ids = []
    for _ in range(4):
        ids.append(qstash.trigger_workflow(workflow_app.url("/done")))
        qstash.advance("1s")
    kept = {r.id: r.state for r in qstash.workflow_runs()}
    # The two newest, and the failed one (the DLQ holds it) though it ended before them.
    assert kept == {ids[3]: "RUN_SUCCESS", ids[2]: "RUN_SUCCESS", failed: "RUN_FAILED"}
    for gone in ids[:2]:
        answer = httpx.get(
            f"{qstash.url}/v2/workflows/logs",
            params={"workflowRunId": gone},
            headers={"Authorization": f"Bearer {qstash.token}"},
        )
        assert answer.json()["runs"] == []
