"""Workflow runs and waiters survive a restart of an `Emulator(data_dir=...)` (virtual clock:
the saved time comes back, so deadlines are checked exactly). The protocol is spoken directly,
as an SDK would (see test_workflows_protocol.py): the test plays the workflow endpoint."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from helpers import requests_to
from pytest_httpserver import HTTPServer
from qstash_emulator import Emulator
from test_workflows_protocol import api, decoded, start_run, step

RUN = "wfr_persist"


def wait(emu: Emulator, url: str, event: str, timeout: str, step_id: int = 1) -> None:
    answer = api(
        emu,
        "POST",
        f"/v2/wait/{event}",
        content=json.dumps(
            {
                "url": url,
                "timeout": timeout,
                "step": {
                    "stepId": step_id,
                    "stepName": "wait-" + event,
                    "stepType": "Wait",
                    "concurrent": 1,
                },
            }
        ),
        headers={
            "Upstash-Workflow-RunId": RUN,
            "Upstash-Workflow-Url": url,
            "Upstash-Workflow-Init": "false",
            "Upstash-Forward-Upstash-Workflow-Sdk-Version": "1",
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {}


def listed(emu: Emulator) -> dict[str, Any]:
    [run] = api(emu, "GET", "/v2/workflows/events").json()["runs"]
    return dict(run)


def test_a_sleeping_step_resumes_after_a_restart_and_the_run_goes_on(
    tmp_path: Path, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/wf")
    with Emulator(data_dir=tmp_path) as emu:
        start_run(emu, url, RUN, body='{"order":7}')
        emu.settle()
        assert step(emu, url, RUN, 1, "a").status_code == 200
        emu.settle()
        slept = step(emu, url, RUN, 2, "nap", **{"Upstash-Delay": "1h"})
        assert slept.status_code == 200, slept.text
        emu.settle()
        assert len(requests_to(httpserver, "/wf")) == 2
        started = emu.now

    with Emulator(data_dir=tmp_path) as emu:
        assert emu.restored == 1  # the sleeping step
        emu.advance(started + 3600 - emu.now - 1)
        assert len(requests_to(httpserver, "/wf")) == 2
        emu.advance(1)
        woke = requests_to(httpserver, "/wf")[2]
        assert woke.headers["Upstash-Workflow-Runid"] == RUN
        assert decoded(woke.get_data())[0] == ("step", '{"order":7}')
        assert [json.loads(b)["stepName"] for _, b in decoded(woke.get_data())[1:]] == [
            "a",
            "nap",
        ]
        # The run is known: its next step is taken (an unknown run's would be a 400) and
        # delivered with every step so far, the ones from before the restart included.
        assert step(emu, url, RUN, 3, "b").status_code == 200
        emu.settle()
        last = requests_to(httpserver, "/wf")[3]
        assert [c for c, _ in decoded(last.get_data())] == ["step"] * 4
        assert decoded(last.get_data())[0][1] == '{"order":7}'
        done = api(emu, "DELETE", f"/v2/workflows/runs/{RUN}", params={"cancel": "false"})
        assert done.status_code == 200, done.text
        emu.settle()
        assert listed(emu)["workflowState"] == "RUN_SUCCESS"

    with Emulator(data_dir=tmp_path) as emu:
        # A finished run is still listed, with its steps, and takes no more steps.
        run = listed(emu)
        assert (run["workflowRunId"], run["workflowState"]) == (RUN, "RUN_SUCCESS")
        names = [s["stepName"] for g in run["steps"] for s in g["steps"]]
        assert names == ["init", "a", "nap", "b"]
        late = step(emu, url, RUN, 4, "c")
        assert late.status_code == 400 and "RUN_SUCCESS" in late.json()["error"]


def test_a_waiter_registered_before_a_restart_is_notified_after_it(
    tmp_path: Path, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/wf")
    with Emulator(data_dir=tmp_path) as emu:
        start_run(emu, url, RUN)
        emu.settle()
        wait(emu, url, "paid", "1d")
        deadline = emu.now + 86400

    with Emulator(data_dir=tmp_path) as emu:
        [waiter] = api(emu, "GET", "/v2/waiters/paid").json()
        assert (waiter["url"], waiter["deadline"]) == (url, int(deadline))
        assert listed(emu)["workflowState"] == "RUN_STARTED"
        notified = api(emu, "POST", "/v2/notify/paid", content="receipt").json()
        assert len(notified) == 1 and notified[0]["messageId"]
        emu.settle()
        resumed = requests_to(httpserver, "/wf")[-1]
        last = json.loads(decoded(resumed.get_data())[-1][1])
        assert base64.b64decode(last["out"]) == b"receipt"
        assert (last["waitEventId"], last["waitTimeout"]) == ("paid", False)
        assert api(emu, "GET", "/v2/waiters/paid").json() == []
        delivered = len(requests_to(httpserver, "/wf"))

    with Emulator(data_dir=tmp_path) as emu:
        # The notified waiter is gone for good: no waiter, and its timeout never fires.
        assert api(emu, "GET", "/v2/waiters/paid").json() == []
        emu.advance(2 * 86400)
        assert len(requests_to(httpserver, "/wf")) == delivered


def test_a_waiters_timeout_fires_at_its_time_after_a_restart(
    tmp_path: Path, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/wf")
    with Emulator(data_dir=tmp_path) as emu:
        start_run(emu, url, RUN)
        emu.settle()
        wait(emu, url, "never", "1h")
        deadline = emu.now + 3600

    with Emulator(data_dir=tmp_path) as emu:
        emu.advance(deadline - emu.now - 1)
        assert len(requests_to(httpserver, "/wf")) == 1
        emu.advance(1)
        timed_out = requests_to(httpserver, "/wf")[-1]
        last = json.loads(decoded(timed_out.get_data())[-1][1])
        assert (last["waitEventId"], last["waitTimeout"]) == ("never", True)
        assert "out" not in last
        assert api(emu, "GET", "/v2/waiters/never").json() == []


def test_a_deadline_passed_while_down_times_out_at_start(
    tmp_path: Path, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/wf")
    with Emulator(data_dir=tmp_path) as emu:
        start_run(emu, url, RUN)
        emu.settle()
        wait(emu, url, "late", "10m")
        stopped = emu.now

    with Emulator(data_dir=tmp_path, start_time=stopped + 3600) as emu:
        emu.settle()
        timed_out = requests_to(httpserver, "/wf")[-1]
        last = json.loads(decoded(timed_out.get_data())[-1][1])
        assert (last["waitEventId"], last["waitTimeout"]) == ("late", True)


def test_a_run_scoped_notify_before_the_wait_is_kept_across_a_restart(
    tmp_path: Path, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/wf")
    with Emulator(data_dir=tmp_path) as emu:
        start_run(emu, url, RUN)
        emu.settle()
        early = api(emu, "POST", f"/v2/notify/{RUN}/early", content="first")
        assert early.status_code == 200 and early.json() == []

    with Emulator(data_dir=tmp_path) as emu:
        answer = api(
            emu,
            "POST",
            "/v2/wait/early",
            content=json.dumps({"url": url, "timeout": "1d", "step": {"stepId": 1}}),
            headers={"Upstash-Workflow-RunId": RUN},
        )
        assert answer.status_code == 200 and answer.json()["messageId"]
        emu.settle()
        last = json.loads(decoded(requests_to(httpserver, "/wf")[-1].get_data())[-1][1])
        assert base64.b64decode(last["out"]) == b"first"


def test_a_cancelled_run_stays_cancelled_and_its_waiter_gone_after_a_restart(
    tmp_path: Path, target: Callable[..., str]
) -> None:
    url = target("/wf")
    with Emulator(data_dir=tmp_path) as emu:
        start_run(emu, url, RUN)
        emu.settle()
        wait(emu, url, "stop", "1d")
        cancelled = api(emu, "DELETE", f"/v2/workflows/runs/{RUN}", params={"cancel": "true"})
        assert cancelled.status_code == 200, cancelled.text

    with Emulator(data_dir=tmp_path) as emu:
        assert listed(emu)["workflowState"] == "RUN_CANCELED"
        assert api(emu, "GET", "/v2/waiters/stop").json() == []
        assert api(emu, "POST", "/v2/notify/stop", content="x").json() == []


def test_a_failed_run_is_in_the_workflow_dlq_after_a_restart_and_resumes_from_it(
    tmp_path: Path, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    url = target("/flaky", 200, 500, 200)  # the init, then step "a" fails once (no retries)
    with Emulator(data_dir=tmp_path) as emu:
        start_run(emu, url, RUN, body='{"n":2}')
        emu.settle()
        assert step(emu, url, RUN, 1, "a", **{"Upstash-Retries": "0"}).status_code == 200
        emu.settle()
        assert listed(emu)["workflowState"] == "RUN_FAILED"

    with Emulator(data_dir=tmp_path) as emu:
        assert listed(emu)["workflowState"] == "RUN_FAILED"
        [entry] = api(emu, "GET", "/v2/dlq", params={"source": "workflow"}).json()["messages"]
        resumed = api(emu, "POST", "/v2/workflows/dlq/resume", params={"dlqIds": entry["dlqId"]})
        assert resumed.status_code == 200, resumed.text
        emu.settle()
        # The new run keeps the failed run's trigger and sends step "a" again.
        again = requests_to(httpserver, "/flaky")[-1]
        assert again.headers["Upstash-Workflow-Runid"] != RUN
        assert decoded(again.get_data())[0] == ("step", '{"n":2}')
        assert json.loads(decoded(again.get_data())[-1][1])["stepName"] == "a"


def test_the_llm_queues_jobs_survive_a_restart(tmp_path: Path) -> None:
    from test_openai_queue import auth, chat, job, submit

    with Emulator(data_dir=tmp_path) as emu:
        emu.llm_queue.configure(concurrency=1)
        emu.llm.reply(contains="zero", content="zero done", times=1)
        emu.llm.reply(contains="first", content="first done", latency=10, times=1)
        ids = [submit(emu, chat(f"the {n} job")).json()["id"] for n in ("zero", "first", "second")]
        emu.advance(1)  # zero completes; first is in progress, second waits
        assert [job(emu, i).json()["status"] for i in ids] == [
            "completed",
            "in_progress",
            "queued",
        ]

    # Settings and LLM scripts are not kept: they are given again, before the start (the
    # unfinished jobs are answered as soon as the emulator runs).
    emu = Emulator(data_dir=tmp_path)
    emu.llm_queue.configure(concurrency=1)
    emu.llm.reply(contains="first", content="first again", latency=10, times=1)
    emu.llm.reply(contains="second", content="second done", times=1)
    with emu:
        listed = httpx.get(emu.url + "/queue/jobs", headers=auth(emu)).json()["data"]
        assert [j["id"] for j in listed] == ids
        done = job(emu, ids[0], "/result")
        assert done.json()["choices"][0]["message"]["content"] == "zero done"
        emu.settle()
        # The interrupted job is answered again, then the one that waited (one worker).
        assert [job(emu, i).json()["status"] for i in ids[1:]] == ["in_progress", "queued"]
        emu.advance(10)
        first, second = (job(emu, i).json() for i in ids[1:])
        assert second["started_at"] == first["completed_at"] == first["started_at"] + 10
        answers = [job(emu, i, "/result").json() for i in ids[1:]]
        assert [a["choices"][0]["message"]["content"] for a in answers] == [
            "first again",
            "second done",
        ]
        # New job ids continue the counter.
        assert submit(emu, chat("more")).json()["id"] not in ids
