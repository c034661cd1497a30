"""A workflow endpoint that speaks the Upstash Workflow protocol itself (no SDK), for the
dashboard's runs tests: `POST /approval` runs

    1. wait  "approval" for the event named in the payload (`{"eventId": ..., "timeout": ...}`)
    2. run   "after": the event's data, as text
    3. end the run (`DELETE /v2/workflows/runs/{id}?cancel=false`) with "done: <data>"

Each delivery carries the run's step list (base64 bodies); the endpoint answers it the way the
SDKs do: it publishes the next step (or waits, or ends the run) before answering 200.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

__all__ = ["ProtocolWorkflow"]


class ProtocolWorkflow:
    """The endpoint on 127.0.0.1, in a thread; `url` is its workflow URL."""

    def __init__(self, qstash_url: str, token: str) -> None:
        self.qstash_url = qstash_url
        self.token = token
        self.errors: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    outer.deliver(dict(self.headers.items()), body)
                    status = 200
                except Exception as exc:  # reported to the test, answered 500
                    outer.errors.append(repr(exc))
                    status = 500
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/approval"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    # -- the protocol --------------------------------------------------------------------------
    def _api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        answer = httpx.request(
            method, self.qstash_url + path, headers=headers, timeout=10, **kwargs
        )
        if answer.status_code != 200:
            raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text}")
        return answer

    def start(self, run_id: str, event_id: str, timeout: str = "1d") -> None:
        """Trigger a run, as the SDKs' `trigger` does (an Init message to the workflow URL)."""
        self._api(
            "POST",
            f"/v2/publish/{self.url}",
            content=json.dumps({"eventId": event_id, "timeout": timeout}),
            headers={**self._run_headers(run_id), "Upstash-Workflow-Init": "true"},
        )

    def _run_headers(self, run_id: str) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "Upstash-Workflow-Init": "false",
            "Upstash-Workflow-RunId": run_id,
            "Upstash-Workflow-Url": self.url,
            "Upstash-Forward-Upstash-Workflow-Sdk-Version": "1",
        }

    def deliver(self, headers: dict[str, str], body: bytes) -> None:
        lower = {k.lower(): v for k, v in headers.items()}
        run_id = lower["upstash-workflow-runid"]
        entries = [base64.b64decode(e["body"]) for e in json.loads(body)]
        payload = json.loads(entries[0])
        steps = [json.loads(e) for e in entries[1:]]
        if not steps:
            wait = {
                "url": self.url,
                "timeout": payload["timeout"],
                "step": {"stepId": 1, "stepName": "approval", "stepType": "Wait", "concurrent": 1},
            }
            self._api(
                "POST",
                f"/v2/wait/{payload['eventId']}",
                content=json.dumps(wait),
                headers=self._run_headers(run_id),
            )
            return
        last = steps[-1]
        if last["stepName"] == "approval":
            data = (
                "timed out"
                if last.get("waitTimeout")
                else base64.b64decode(last.get("out") or "").decode()
            )
            step = {
                "stepId": 2,
                "stepName": "after",
                "stepType": "Run",
                "out": json.dumps(data),
                "concurrent": 1,
            }
            self._api(
                "POST",
                f"/v2/publish/{self.url}",
                content=json.dumps(step),
                headers=self._run_headers(run_id),
            )
            return
        result = json.dumps("done: " + json.loads(last["out"]))
        self._api(
            "DELETE",
            f"/v2/workflows/runs/{run_id}",
            params={"cancel": "false"},
            content=result,
            headers=self._run_headers(run_id),
        )
