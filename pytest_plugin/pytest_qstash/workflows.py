"""Workflow helpers of the `qstash` fixture.

Runs and their steps, triggering with ids from the seed, notify, waiting for a run, and
assertions whose failure messages show the run so far.

Every read is a copy made on the emulator's loop (one sync point), like the delivery queries.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from qstash_emulator.parsing.publish_headers import parse_message_headers
from qstash_emulator.workflows import Run, WorkflowRuns
from qstash_emulator.workflows.events import waiter_json
from qstash_emulator.workflows.model import RUN_STARTED, STEP

from .records import iso

__all__ = ["WorkflowHelpers", "WorkflowRunInfo", "WorkflowStep", "run_info"]

if TYPE_CHECKING:
    from qstash_emulator import Emulator

    from .server import Server

T = TypeVar("T")
UNSET: Any = object()
__tracebackhide__ = True


@dataclass(frozen=True)
class WorkflowStep:
    """One finished step of a run.

    Its name, type ("Initial", "Run", "SleepFor", "Call", "Wait"...), its result as the SDK
    reads it back (JSON parsed where it parses), and when it was recorded.
    """

    step_id: int
    name: str
    type: str
    result: Any
    time: float
    concurrent: int = 1
    message_id: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict)

    def describe(self, start: float) -> str:
        """One line: id, name, type, time since `start` and result."""
        shown = json.dumps(self.result, default=repr)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        return (
            f"#{self.step_id} {self.name!r} ({self.type}) at t=+{self.time - start:g}s -> {shown}"
        )


@dataclass(frozen=True)
class WorkflowRunInfo:
    """A copy of a workflow run.

    Its state ("RUN_STARTED", "RUN_SUCCESS", "RUN_FAILED", "RUN_CANCELED"), its steps so far,
    the route's response and the failure function's fate.
    """

    id: str
    url: str
    state: str
    created_at: float
    completed_at: float | None
    payload: Any
    steps: list[WorkflowStep]
    response: Any = None
    failure: Mapping[str, Any] | None = None
    dlq_id: str | None = None
    waiting_for: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # messages of the run still on their way

    @property
    def finished(self) -> bool:
        """The run is over (success, failure or cancel)."""
        return self.state != RUN_STARTED

    def step(self, name: str) -> WorkflowStep:
        """The step with this name (KeyError listing the steps if none)."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"run {self.id} has no step {name!r}; steps: {[s.name for s in self.steps]}")

    def describe(self, start: float) -> str:
        """The run for a failure message: state, payload, steps, what it waits for."""
        lines = [f"run {self.id} -> {self.url}: {self.state}"]
        if self.completed_at is not None:
            lines[0] += f" at t=+{self.completed_at - start:g}s ({iso(self.completed_at)})"
        lines.append(f"  payload: {json.dumps(self.payload, default=repr)[:120]}")
        lines.append(f"  steps so far ({len(self.steps)}):")
        lines += [f"    {s.describe(start)}" for s in self.steps] or ["    (none)"]
        if self.waiting_for:
            lines.append(f"  waiting for events: {', '.join(self.waiting_for)}")
        if self.pending:
            lines.append(f"  messages on their way: {', '.join(self.pending)}")
        if self.failure is not None:
            f = self.failure
            lines.append(
                f"  failure function: {f['state']} (step failed with {f['fail_status']}: "
                f"{str(f['fail_body'])[:120]})"
            )
        if self.response is not None:
            lines.append(f"  response: {json.dumps(self.response, default=repr)[:120]}")
        return "\n".join(lines)


def _parse(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _result(step: Mapping[str, Any]) -> Any:
    if step.get("waitEventId") is not None:
        out = step.get("out")
        data = base64.b64decode(out).decode("utf-8", "replace") if out else None
        return {"timeout": bool(step.get("waitTimeout")), "event_data": _parse(data)}
    out = _parse(step.get("out"))
    if step.get("stepType") == "Call" and isinstance(out, dict):
        return {**out, "body": _parse(out.get("body"))}
    return out


def run_info(run: Run, emu: Emulator) -> WorkflowRunInfo:
    """Runs on the emulator's loop."""
    steps: list[WorkflowStep] = []
    for i, entry in enumerate(run.entries):
        if entry.call_type != STEP:
            continue
        if i == 0:
            steps.append(
                WorkflowStep(
                    0,
                    "init",
                    "Initial",
                    _parse(entry.body.decode("utf-8", "replace")),
                    entry.created_at,
                    1,
                    entry.message_id,
                )
            )
            continue
        raw = entry.step
        if raw is None or raw.get("stepId") == 0:
            continue  # a parallel plan step, not a result
        steps.append(
            WorkflowStep(
                int(raw.get("stepId") or 0),
                str(raw.get("stepName")),
                str(raw.get("stepType")),
                _result(raw),
                entry.created_at,
                int(raw.get("concurrent") or 1),
                entry.message_id,
                raw,
            )
        )
    # Parallel results arrive in whatever order their deliveries finish: list them by step id.
    steps.sort(key=lambda s: s.step_id)
    waiting = emu.workflows.events.waiting_for(run)
    messages = emu.engine.state(run.user).messages
    pending = [m for m in run.message_ids if m in messages and not messages[m].finished]
    failure = None
    if run.failure is not None:
        f = run.failure
        failure = {
            "state": f.state,
            "fail_status": f.fail_status,
            "fail_body": f.fail_body,
            "response_status": f.response_status,
        }
    return WorkflowRunInfo(
        id=run.id,
        url=run.url,
        state=run.state,
        created_at=run.created_at,
        completed_at=run.completed_at,
        payload=_parse(run.initial_body.decode("utf-8", "replace")),
        steps=steps,
        response=_parse(run.response) if run.response is not None else None,
        failure=failure,
        dlq_id=run.dlq_id,
        waiting_for=waiting,
        pending=pending,
    )


class WorkflowHelpers:
    """Mixed into `QStashHarness` (the `qstash` fixture)."""

    server: Server
    _emu: Emulator

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        raise NotImplementedError

    def _runs(self) -> WorkflowRuns:
        return self._emu.workflows

    async def _collect(self, url: str | None, run_id: str | None) -> list[WorkflowRunInfo]:
        await self._emu.scheduler.catch_up()
        found = [
            run_info(r, self._emu)
            for r in reversed(self._runs().runs(self._emu.user))
            if (url is None or r.url == url) and (run_id is None or r.id == run_id)
        ]
        return found

    # -- queries ------------------------------------------------------------------------------
    def workflow_runs(self, url: str | None = None) -> list[WorkflowRunInfo]:
        """The default user's workflow runs (of one workflow URL, if given), oldest first."""
        return self._run(self._collect(url, None))

    def workflow_run(self, run_id: str) -> WorkflowRunInfo:
        """One run by id (AssertionError listing the runs if it is unknown)."""
        found = self._run(self._collect(None, run_id))
        if not found:
            raise AssertionError(f"no workflow run {run_id}; runs: {self._known()}")
        return found[0]

    def _known(self) -> str:
        runs = self.workflow_runs()
        return ", ".join(f"{r.id} ({r.url}, {r.state})" for r in runs) or "none"

    # -- actions ------------------------------------------------------------------------------
    def trigger_workflow(
        self,
        url: str,
        body: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
        run_id: str | None = None,
        retries: int | None = None,
        failure_url: str | None = None,
        delay: str | None = None,
    ) -> str:
        """Start a run as the JS client's `trigger` does; returns the run id.

        A signed Init message goes to the workflow URL; the run id comes from the emulator's
        seed unless given. `retries` and `failure_url` (the workflow's own URL when it has a
        failure function) hold for every step of the run that sets none of its own; `delay`
        ("1m") holds the start back.
        """
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        raw = data.encode() if isinstance(data, str) else data

        async def start() -> str:
            emu = self._emu
            rid = run_id or emu.backend.ids.next("workflow_run", "wfr_", 21)
            pairs = [
                ("Content-Type", "application/json"),
                ("Upstash-Workflow-Init", "true"),
                ("Upstash-Workflow-RunId", rid),
                ("Upstash-Workflow-Url", url),
                ("Upstash-Feature-Set", "LazyFetch,InitialBody,WF_DetectTrigger"),
                ("Upstash-Forward-Upstash-Workflow-Sdk-Version", "1"),
                *[(f"Upstash-Forward-{k}", v) for k, v in (headers or {}).items()],
            ]
            if retries is not None:
                pairs.append(("Upstash-Retries", str(retries)))
            if delay is not None:
                pairs.append(("Upstash-Delay", delay))
            if failure_url is not None:
                failure = "Upstash-Failure-Callback"
                pairs += [
                    (failure, failure_url),
                    (f"{failure}-Forward-Upstash-Workflow-Is-Failure", "true"),
                    (f"{failure}-Forward-Upstash-Workflow-Failure-Callback", "true"),
                    (f"{failure}-Workflow-Runid", rid),
                    (f"{failure}-Workflow-Init", "false"),
                    (f"{failure}-Workflow-Url", url),
                    (f"{failure}-Workflow-Calltype", "failureCall"),
                    *[(f"{failure}-Forward-{k}", v) for k, v in (headers or {}).items()],
                ]
                if retries is not None:
                    pairs.append((f"{failure}-Retries", str(retries)))
            spec = parse_message_headers(pairs, emu.user.quota)
            emu.backend.destinations.publish(emu.user, url, spec, raw, caller_ip="127.0.0.1")
            return rid

        return self._run(start())

    def notify(
        self, event_id: str, data: Any = None, *, run_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Notify the runs waiting for `event_id` (only `run_id`'s, if given).

        Answers as `POST /v2/notify` does: one entry per waiter reached.
        """
        payload = data if isinstance(data, (bytes, str)) else json.dumps(data)
        raw = payload.encode() if isinstance(payload, str) else payload

        async def go() -> list[dict[str, Any]]:
            return self._runs().events.notify(self._emu.user, event_id, raw, run_id)

        return self._run(go())

    def waiters(self, event_id: str) -> list[dict[str, Any]]:
        """Who waits for the event, as `GET /v2/waiters/{eventId}` answers."""

        async def go() -> list[dict[str, Any]]:
            await self._emu.scheduler.catch_up()
            return [waiter_json(w) for w in self._runs().events.waiters(self._emu.user, event_id)]

        return self._run(go())

    def cancel_workflow(self, run_id: str) -> None:
        """Cancel a run as `DELETE /v2/workflows/runs/{id}?cancel=true` does."""

        async def go() -> None:
            self._runs().finish(self._emu.user, run_id, cancel=True)

        self._run(go())

    # -- waiting and assertions ---------------------------------------------------------------
    def wait_for_run(
        self,
        run_id: str | None = None,
        *,
        url: str | None = None,
        timeout: float | str | None = None,
    ) -> WorkflowRunInfo:
        """Wait until the run (or the latest run of `url`) has finished; return it then.

        With auto_advance idle virtual time is skipped; on the real clock it waits up to
        `timeout` seconds; otherwise only work due now runs.
        """
        if run_id is None and url is None:
            raise TypeError("wait_for_run needs a run id or a url")

        def pick() -> Run | None:
            runs = self._runs().runs(self._emu.user)
            found = [
                r
                for r in runs
                if (run_id is None or r.id == run_id) and (url is None or r.url == url)
            ]
            return found[0] if found else None

        async def go() -> list[WorkflowRunInfo]:
            def done() -> bool:
                run = pick()
                return run is not None and not run.active

            await self._emu.await_until(done, timeout)
            run = pick()
            return [] if run is None else [run_info(run, self._emu)]

        found = self._run(go())
        if not found:
            raise AssertionError(
                f"wait_for_run: no workflow run {run_id or 'of ' + str(url)}; runs: {self._known()}"
            )
        return found[0]

    def _assert_state(
        self, state: str, run: str | None, url: str | None, timeout: float | str | None
    ) -> WorkflowRunInfo:
        if run is not None and run.startswith(("http://", "https://")):
            run, url = None, run
        found = self.wait_for_run(run, url=url, timeout=timeout)
        if found.state != state:
            start = self.server.started
            raise AssertionError(
                f"expected workflow run {found.id} to be {state}, it is {found.state}\n"
                + found.describe(start)
                + _time_hint(self._emu)
            )
        return found

    def assert_workflow_completed(
        self,
        run: str | None = None,
        *,
        url: str | None = None,
        result: Any = UNSET,
        steps: list[str] | None = None,
        timeout: float | str | None = None,
    ) -> WorkflowRunInfo:
        """Assert the run (a run id, or the latest run of a workflow URL) completed.

        Optionally with this response and these step names (after "init", in order). Returns
        the run.
        """
        found = self._assert_state("RUN_SUCCESS", run, url, timeout)
        start = self.server.started
        if result is not UNSET and found.response != result:
            raise AssertionError(
                f"workflow run {found.id} completed with {found.response!r}, expected {result!r}\n"
                + found.describe(start)
            )
        if steps is not None:
            names = [s.name for s in found.steps if s.type != "Initial"]
            if names != steps:
                raise AssertionError(
                    f"workflow run {found.id} ran steps {names}, expected {steps}\n"
                    + found.describe(start)
                )
        return found

    def assert_workflow_failed(
        self,
        run: str | None = None,
        *,
        url: str | None = None,
        failure_function: bool | None = None,
        timeout: float | str | None = None,
    ) -> WorkflowRunInfo:
        """Assert the run failed (its step ran out of retries).

        With failure_function=True, also that the failure function (or failure URL) ran and
        answered 2xx.
        """
        found = self._assert_state("RUN_FAILED", run, url, timeout)
        if failure_function:
            ok = found.failure is not None and found.failure["state"] == "CALLBACK_SUCCESS"
            if not ok:
                # The failure callback is a message of its own: let it arrive first.
                found = self._settled_failure(found, timeout)
        return found

    def _settled_failure(
        self, found: WorkflowRunInfo, timeout: float | str | None
    ) -> WorkflowRunInfo:
        async def go() -> list[WorkflowRunInfo]:
            def done() -> bool:
                run = self._runs().find(self._emu.user, found.id)
                return (
                    run is not None
                    and run.failure is not None
                    and run.failure.state != "CALLBACK_INPROGRESS"
                )

            await self._emu.await_until(done, timeout)
            run = self._runs().find(self._emu.user, found.id)
            return [] if run is None else [run_info(run, self._emu)]

        [again] = self._run(go())
        if again.failure is None or again.failure["state"] != "CALLBACK_SUCCESS":
            raise AssertionError(
                f"expected the failure function of run {again.id} to have run, it "
                + ("was never called" if again.failure is None else f"is {again.failure['state']}")
                + "\n"
                + again.describe(self.server.started)
                + _time_hint(self._emu)
            )
        return again


def _time_hint(emu: Emulator) -> str:
    if emu.clock.virtual and not emu.auto_advance:
        return (
            "\n  (virtual time moves only when the test moves it: advance(...), "
            "run_until_idle() or auto_advance)"
        )
    return ""
