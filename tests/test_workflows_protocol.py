"""The workflow protocol without an SDK: what a run's deliveries look like, and the bad input
of the workflow endpoints (QStash's status and `{"error"}` body, state untouched)."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from pytest_httpserver import HTTPServer
from qstash_emulator import Emulator
from werkzeug import Request, Response


def api(emu: Emulator, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {emu.token}", **kwargs.pop("headers", {})}
    return httpx.request(method, emu.url + path, headers=headers, timeout=10, **kwargs)


def start_run(emu: Emulator, url: str, run_id: str = "wfr_test", body: str = '{"n":1}') -> None:
    answer = api(
        emu,
        "POST",
        f"/v2/publish/{url}",
        content=body,
        headers={
            "Content-Type": "application/json",
            "Upstash-Workflow-Init": "true",
            "Upstash-Workflow-RunId": run_id,
            "Upstash-Workflow-Url": url,
            "Upstash-Forward-Upstash-Workflow-Sdk-Version": "1",
            "Upstash-Forward-Host": "stale.example",  # an SDK copies these from its request
            "Upstash-Forward-Content-Type": "application/json",
        },
    )
    assert answer.status_code == 200, answer.text


def step(
    emu: Emulator, url: str, run_id: str, step_id: int, name: str, **extra: str
) -> httpx.Response:
    body = {
        "stepId": step_id,
        "stepName": name,
        "stepType": "Run",
        "out": json.dumps(name),
        "concurrent": 1,
    }
    return api(
        emu,
        "POST",
        f"/v2/publish/{url}",
        content=json.dumps(body),
        headers={
            "Content-Type": "application/json",
            "Upstash-Workflow-Init": "false",
            "Upstash-Workflow-RunId": run_id,
            "Upstash-Workflow-Url": url,
            "Upstash-Forward-Upstash-Workflow-Sdk-Version": "1",
            **extra,
        },
    )


def decoded(body: bytes) -> list[tuple[str, str]]:
    return [(e["callType"], base64.b64decode(e["body"]).decode()) for e in json.loads(body)]


def test_a_step_is_delivered_with_the_run_so_far(emu: Emulator, httpserver: HTTPServer) -> None:
    got: list[Request] = []

    def handler(request: Request) -> Response:
        got.append(request)
        return Response("ok")

    httpserver.expect_request("/wf").respond_with_handler(handler)
    url = httpserver.url_for("/wf")
    start_run(emu, url)
    emu.settle()
    assert step(emu, url, "wfr_test", 1, "a").status_code == 200
    emu.settle()

    first, second = got
    assert decoded(first.get_data()) == [("step", '{"n":1}')]
    assert [c for c, _ in decoded(second.get_data())] == ["step", "step"]
    assert json.loads(decoded(second.get_data())[1][1])["stepName"] == "a"
    for request in got:
        assert request.headers["Upstash-Workflow-Runid"] == "wfr_test"
        assert request.headers["Upstash-Workflow-Url"] == url
        assert request.headers["Upstash-Workflow-Sdk-Version"] == "1"
        assert request.headers.getlist("Content-Type") == ["application/json"]
        assert request.headers["Host"] != "stale.example"
    # The lazy fetch answers the same entries while the run goes on.
    steps = api(emu, "GET", "/v2/workflows/runs/wfr_test").json()
    assert [s["callType"] for s in steps] == ["step", "step"]


def test_a_step_for_a_finished_or_unknown_run_is_refused_and_stores_nothing(
    emu: Emulator, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/wf").respond_with_data("ok")
    url = httpserver.url_for("/wf")
    unknown = step(emu, url, "wfr_nope", 1, "a")
    assert unknown.status_code == 400 and "wfr_nope does not exist" in unknown.json()["error"]

    start_run(emu, url)
    emu.settle()
    assert (
        api(emu, "DELETE", "/v2/workflows/runs/wfr_test", params={"cancel": "false"}).status_code
        == 200
    )
    late = step(emu, url, "wfr_test", 1, "a")
    assert late.status_code == 400 and "RUN_SUCCESS" in late.json()["error"]
    emu.settle()
    assert emu.engine.state(emu.user).messages == {}
    [run] = api(emu, "GET", "/v2/workflows/events").json()["runs"]
    assert run["workflowState"] == "RUN_SUCCESS"
    assert [s["stepName"] for g in run["steps"] for s in g["steps"]] == ["init"]
    assert api(emu, "GET", "/v2/workflows/runs/wfr_test").status_code == 404


BAD: list[tuple[str, str, str, Any, int, str]] = [
    ("wait without body", "POST", "/v2/wait/e1", None, 400, "JSON object"),
    ("wait without url", "POST", "/v2/wait/e1", {"timeout": "1d", "step": {}}, 400, "url"),
    (
        "wait bad timeout",
        "POST",
        "/v2/wait/e1",
        {"url": "http://a.test", "timeout": "soon", "step": {}},
        400,
        "timeout",
    ),
    (
        "wait zero timeout",
        "POST",
        "/v2/wait/e1",
        {"url": "http://a.test", "timeout": 0, "step": {}},
        400,
        "positive",
    ),
    (
        "wait without run",
        "POST",
        "/v2/wait/e1",
        {"url": "http://a.test", "timeout": "1d", "step": {}},
        400,
        "RunId",
    ),
    (
        "wait bad timeout headers",
        "POST",
        "/v2/wait/e1",
        {"url": "http://a.test", "timeout": "1d", "step": {}, "timeoutHeaders": {"a": "b"}},
        400,
        "timeoutHeaders",
    ),
    ("unknown run", "GET", "/v2/workflows/runs/wfr_nope", None, 404, "not found"),
    (
        "cancel unknown run",
        "DELETE",
        "/v2/workflows/runs/wfr_nope?cancel=true",
        None,
        404,
        "not found",
    ),
    ("bad cancel flag", "DELETE", "/v2/workflows/runs/wfr_nope?cancel=maybe", None, 400, "cancel"),
    ("bad state filter", "GET", "/v2/workflows/events?state=DONE", None, 400, "state"),
    ("bad count", "GET", "/v2/workflows/events?count=0", None, 400, "count"),
    ("bad date", "DELETE", "/v2/workflows/runs?fromDate=yesterday", None, 400, "fromDate"),
    ("resume unknown", "POST", "/v2/workflows/dlq/resume?dlqIds=1", None, 404, "not found"),
    ("restart unknown", "POST", "/v2/workflows/dlq/restart?dlqIds=1", None, 404, "not found"),
    ("delete unknown", "DELETE", "/v2/workflows/dlq?dlqIds=1", None, 404, "not found"),
    (
        "failure callback retry",
        "POST",
        "/v2/workflows/dlq/callback/1",
        None,
        404,
        "not found",
    ),
    ("webhook of an unknown user", "POST", "/v2/workflows/hooks/u/r/e", None, 404, "user u"),
]


@pytest.mark.parametrize(
    ("case", "method", "path", "body", "status", "needle"), BAD, ids=[b[0] for b in BAD]
)
def test_bad_workflow_requests_answer_an_error_and_change_nothing(
    emu: Emulator, case: str, method: str, path: str, body: Any, status: int, needle: str
) -> None:
    answer = api(emu, method, path, content=None if body is None else json.dumps(body))
    assert answer.status_code == status, (case, answer.text)
    assert needle in answer.json()["error"], case
    assert api(emu, "GET", "/v2/workflows/events").json() == {"runs": []}
    assert api(emu, "GET", "/v2/waiters/e1").json() == []


def test_notify_without_waiters_answers_an_empty_list(emu: Emulator) -> None:
    assert api(emu, "POST", "/v2/notify/nobody", content="x").json() == []
    assert api(emu, "POST", "/v2/notify/wfr_none/nobody", content="x").json() == []
    assert api(emu, "GET", "/v2/waiters/nobody").json() == []


def test_workflow_routes_need_a_token(emu: Emulator) -> None:
    answer = httpx.post(emu.url + "/v2/notify/e1", content="x")
    assert answer.status_code == 401 and "error" in answer.json()
