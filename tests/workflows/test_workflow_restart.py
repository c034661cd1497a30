"""A run of the official Python SDK survives a restart of an `Emulator(data_dir=...)`: it
sleeps across the restart and finishes on the emulator that comes back (same port, same keys)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from qstash_emulator import Emulator
from sdk_app import WorkflowApp
from upstash_workflow import AsyncWorkflowContext

Ctx = AsyncWorkflowContext[Any]
RUN = "wfr_sdk_restart"


def trigger(emu: Emulator, url: str) -> None:
    answer = httpx.post(
        f"{emu.url}/v2/publish/{url}",
        content='{"order": 9}',
        headers={
            "Authorization": f"Bearer {emu.token}",
            "Content-Type": "application/json",
            "Upstash-Workflow-Init": "true",
            "Upstash-Workflow-RunId": RUN,
            "Upstash-Workflow-Url": url,
            "Upstash-Feature-Set": "LazyFetch,InitialBody,WF_DetectTrigger",
            "Upstash-Forward-Upstash-Workflow-Sdk-Version": "1",
        },
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def runs(emu: Emulator) -> list[dict[str, Any]]:
    answer = httpx.get(
        f"{emu.url}/v2/workflows/events",
        headers={"Authorization": f"Bearer {emu.token}"},
        timeout=10,
    )
    found: list[dict[str, Any]] = answer.json()["runs"]
    return found


def test_an_sdk_run_sleeps_across_a_restart_and_finishes(tmp_path: Path) -> None:
    first = Emulator(data_dir=tmp_path)
    with first:
        app = WorkflowApp(first.env())

        @app.route("/sleepy")
        async def sleepy(context: Ctx) -> None:
            payload = context.request_payload
            before = await context.run("before", lambda: "before")
            await context.sleep("nap", "1h")
            after = await context.run("after", lambda: f"after {before}")
            app.record(context, payload=payload, after=after)

        app.start()
        url = app.url("/sleepy")
        trigger(first, url)
        first.advance(60)
        [run] = runs(first)
        assert run["workflowState"] == "RUN_STARTED"
        port, stopped = first.port, first.now
    try:
        with Emulator(data_dir=tmp_path, port=port) as second:
            assert second.now == stopped
            second.advance(3600)
            [run] = runs(second)
            assert run["workflowState"] == "RUN_SUCCESS"
            names = [s["stepName"] for g in run["steps"] for s in g["steps"]]
            assert names == ["init", "before", "nap", "after"]
            assert app.seen[RUN] == {"payload": {"order": 9}, "after": "after before"}
    finally:
        app.stop()
