"""The `workflow_app` fixture: an app serving workflows of the official Python SDK."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_qstash import QStashHarness
from sdk_app import WorkflowApp


@pytest.fixture
def workflow_app(qstash: QStashHarness) -> Iterator[WorkflowApp]:
    app = WorkflowApp(qstash.env())
    yield app
    app.stop()


# -- the JS SDK's app (node + express), built like the contract environments ----------------
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "contract"))
from contract_envs import WORKFLOW_JS, RegistryUnreachable, ensure_node  # noqa: E402


@dataclass
class JsWorkflowApp:
    base: str

    def url(self, path: str) -> str:
        return self.base + path

    def seen(self) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.get(self.base + "/__seen", timeout=10).json()
        return answer


@pytest.fixture
def js_workflow_app(qstash: QStashHarness) -> Iterator[JsWorkflowApp]:
    try:
        where = ensure_node(WORKFLOW_JS)
    except RegistryUnreachable as exc:
        pytest.skip(f"npm registry unreachable, cannot build {WORKFLOW_JS.name}: {exc}")
    script = Path(__file__).with_name("js_workflow_app.mjs")
    copy = where / script.name  # ESM resolves packages from the script's own folder
    shutil.copyfile(script, copy)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QSTASH_", "NODE"))}
    proc = subprocess.Popen(
        [WORKFLOW_JS.node, str(copy)],
        cwd=where,
        env={**env, **qstash.env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until node is up (or has died)
    if not line.startswith("LISTENING "):
        proc.kill()
        raise RuntimeError(f"the JS workflow app did not start: {line}{proc.stdout.read()}")
    try:
        yield JsWorkflowApp(f"http://127.0.0.1:{int(line.split()[1])}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
