"""Waits and notifies of workflow runs: `POST /v2/wait`, `/v2/notify`, `GET /v2/waiters`.

A waiter's timeout is a timer on the one scheduler, so a one-week wait ends in one virtual
`advance`. A notified (or timed-out) wait step is published like any other step of its run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..core.clock import ms
from ..core.engine import Engine
from ..core.errors import bad_request
from ..core.users import User
from ..parsing import header_names as h
from ..parsing.durations import DurationError, parse_duration
from ..parsing.publish_headers import is_url, parse_message_headers
from . import persist
from . import protocol as p
from .model import Run, Waiter

__all__ = ["WorkflowEvents", "waiter_json"]


class WorkflowEvents:
    """Every user's waiters, by event id."""

    def __init__(self, engine: Engine, find: Callable[[User, str], Run | None]) -> None:
        self.engine = engine
        self.find = find  # the runs' lookup
        self._waiters: dict[str, dict[str, list[Waiter]]] = {}

    def reset(self) -> None:
        """Forget every waiter; their timers are cancelled."""
        for by_event in self._waiters.values():
            for waiters in by_event.values():
                for waiter in waiters:
                    if waiter.timer is not None:
                        waiter.timer.cancel()
        self._waiters.clear()

    def wait(
        self, user: User, event_id: str, headers: list[tuple[str, str]], body: Any
    ) -> dict[str, Any]:
        """POST /v2/wait/{eventId}: the run waits for the event or its timeout."""
        if not event_id.strip():
            raise bad_request("event id cannot be empty")
        if not isinstance(body, dict):
            raise bad_request("wait body must be a JSON object with url, timeout and step")
        url, step, timeout = body.get("url"), body.get("step"), body.get("timeout")
        if not isinstance(url, str) or not is_url(url):
            raise bad_request("wait body needs url: the workflow URL to call upon notify")
        if not isinstance(step, dict):
            raise bad_request("wait body needs step: the waiting step")
        seconds = _timeout_seconds(timeout)
        timeout_url = body.get("timeoutUrl") or url
        if not isinstance(timeout_url, str) or not is_url(timeout_url):
            raise bad_request("invalid timeoutUrl: it must start with http:// or https://")
        timeout_headers = body.get("timeoutHeaders")
        if timeout_headers is not None and not p.is_header_map(timeout_headers):
            raise bad_request("timeoutHeaders must map header names to lists of strings")
        kept = [
            (k, v)
            for k, v in headers
            if k.lower().startswith("upstash-") or k.lower() == "content-type"
        ]
        run_id = p.lower_map(kept).get(p.RUN_ID)
        if not run_id:
            raise bad_request("wait needs the Upstash-Workflow-RunId header of the waiting run")
        run = self.find(user, run_id)
        if run is None or not run.active:
            state = "not found" if run is None else run.state
            raise bad_request(f"workflow run {run_id} is {state}: it cannot wait")
        # Both continuations are parsed now, so a bad header is refused before any change.
        parse_message_headers(kept, user.quota)
        if timeout_headers:
            parse_message_headers(h.flat(timeout_headers), user.quota)
        now = self.engine.clock.now()
        waiter = Waiter(
            event_id=event_id,
            run_id=run_id,
            user=user,
            url=url,
            deadline=now + seconds,
            timeout=str(timeout),
            headers=kept,
            step=step,
            created_at=now,
            timeout_url=timeout_url,
            timeout_body=body.get("timeoutBody"),
            timeout_headers=timeout_headers,
        )
        early = run.early_events.pop(event_id, None)
        if early is not None:
            self._saved_run(run)
            return {"messageId": self._resume(waiter, early)}
        self._arm(waiter, (self.engine.ids.counter("order"),))
        self.engine.store.put(persist.WAITER, user.name, persist.waiter_key(waiter), waiter)
        return {}

    def restore(self, waiter: Waiter, order: tuple[int, ...]) -> None:
        """Put back a saved waiter, its timeout at its deadline (startup, `persist`)."""
        self._arm(waiter, order)

    def _arm(self, waiter: Waiter, order: tuple[int, ...]) -> None:
        self._waiters.setdefault(waiter.user.name, {}).setdefault(waiter.event_id, []).append(
            waiter
        )

        async def time_out() -> None:
            self._timed_out(waiter)

        waiter.timer = self.engine.scheduler.call_at(waiter.deadline, time_out, order)

    def _forget(self, waiter: Waiter) -> None:
        """The waiter is done (notified, timed out, its run over): its timer and its row go."""
        if waiter.timer is not None:
            waiter.timer.cancel()
        self.engine.store.delete(persist.WAITER, waiter.user.name, persist.waiter_key(waiter))

    def _saved_run(self, run: Run) -> None:
        self.engine.store.put(persist.RUN, run.user.name, run.id, run)

    def notify(
        self, user: User, event_id: str, data: bytes, run_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Deliver the event to every run waiting for it (only `run_id`'s, if given).

        Without a waiter a plain notify is lost; a run-scoped one is kept for the run's next
        wait.
        """
        by_event = self._waiters.get(user.name, {})
        waiting = by_event.get(event_id, [])
        chosen = [w for w in waiting if run_id is None or w.run_id == run_id]
        rest = [w for w in waiting if w not in chosen]
        if rest:
            by_event[event_id] = rest
        else:
            by_event.pop(event_id, None)
        answers = []
        for waiter in chosen:
            self._forget(waiter)
            answers.append(
                {
                    "waiter": waiter_json(waiter),
                    "messageId": self._resume(waiter, data),
                    "error": "",
                }
            )
        if run_id is not None and not chosen:
            run = self.find(user, run_id)
            if run is not None and run.active:
                run.early_events[event_id] = data
                self._saved_run(run)
        return answers

    def waiting_for(self, run: Run) -> list[str]:
        """The events the run waits for now, sorted."""
        by_event = self._waiters.get(run.user.name, {})
        return sorted(
            e for e, waiters in by_event.items() if any(w.run_id == run.id for w in waiters)
        )

    def waiters(self, user: User, event_id: str) -> list[Waiter]:
        """Who waits for the event now."""
        return list(self._waiters.get(user.name, {}).get(event_id, []))

    def _resume(self, waiter: Waiter, data: bytes) -> str:
        step = {
            **waiter.step,
            "out": p.b64(data),
            "waitEventId": waiter.event_id,
            "waitTimeout": False,
            "waitTimeoutDuration": waiter.timeout,
            "waitTimeoutDeadline": ms(waiter.deadline),
        }
        return self._continue(waiter, waiter.url, waiter.headers, step)

    def _timed_out(self, waiter: Waiter) -> None:
        by_event = self._waiters.get(waiter.user.name, {})
        waiting = by_event.get(waiter.event_id, [])
        if waiter not in waiting:
            return
        waiting.remove(waiter)
        self._forget(waiter)
        if not waiting:
            by_event.pop(waiter.event_id, None)
        run = self.find(waiter.user, waiter.run_id)
        if run is None or not run.active:
            return
        step = {k: v for k, v in waiter.step.items() if k != "out"}
        step.update(
            waitEventId=waiter.event_id,
            waitTimeout=True,
            waitTimeoutDuration=waiter.timeout,
            waitTimeoutDeadline=ms(waiter.deadline),
        )
        headers = h.flat(waiter.timeout_headers) if waiter.timeout_headers else waiter.headers
        self._continue(waiter, waiter.timeout_url or waiter.url, headers, step)

    def _continue(
        self, waiter: Waiter, url: str, headers: list[tuple[str, str]], step: dict[str, Any]
    ) -> str:
        """The run goes on: its wait step, now with a result, is published like any step."""
        spec = parse_message_headers(headers, waiter.user.quota)
        body = json.dumps(step, separators=(",", ":")).encode()
        answer = self.engine.publish_url(waiter.user, url, spec, body, caller_ip="127.0.0.1")
        return str(answer["messageId"])

    def drop(self, run: Run) -> None:
        """Forget the run's waiters (it is over); their timers are cancelled."""
        by_event = self._waiters.get(run.user.name, {})
        for event_id in list(by_event):
            kept = []
            for waiter in by_event[event_id]:
                if waiter.run_id == run.id:
                    self._forget(waiter)
                else:
                    kept.append(waiter)
            if kept:
                by_event[event_id] = kept
            else:
                del by_event[event_id]


def waiter_json(waiter: Waiter) -> dict[str, Any]:
    """The Waiter shape of the QStash docs (deadline in unix seconds)."""
    out: dict[str, Any] = {
        "url": waiter.url,
        "deadline": int(waiter.deadline),
        "headers": h.from_pairs(waiter.headers),
        "timeoutUrl": waiter.timeout_url,
    }
    if waiter.timeout_body is not None:
        out["timeoutBody"] = waiter.timeout_body
    if waiter.timeout_headers is not None:
        out["timeoutHeaders"] = waiter.timeout_headers
    return out


def _timeout_seconds(value: Any) -> float:
    if isinstance(value, bool) or value is None:
        raise bad_request("wait body needs timeout: a duration such as '7d' or seconds")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except DurationError as exc:
            raise bad_request(f"invalid wait timeout: {exc}") from None
    else:
        raise bad_request("wait timeout must be a duration string or a number of seconds")
    if seconds <= 0:
        raise bad_request("wait timeout must be positive")
    return seconds
