"""The workflow app under test: `app.mjs` under node, on 127.0.0.1, configured from the
environment the `qstash` fixture provides (QSTASH_URL, QSTASH_TOKEN, signing keys).

Its node packages (package.json) are installed on first use into the git-ignored
`.venvs/workflow-example` of the checkout and reused afterwards.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_qstash import QStashHarness

HERE = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("QSTASH_CONTRACT_CACHE", str(HERE.parents[1] / ".venvs")))
MODULES = CACHE / "workflow-example"
# A key the app forwards to the image API: api.openai.com is answered by the emulator's
# scripted engine (it never reaches the network), which wants some bearer token.
FAKE_OPENAI_KEY = "sk-test-not-a-real-key"


def node_modules() -> Path:
    """The folder holding node_modules for package.json (npm install on first use)."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.skip("node and npm are needed for the workflow example")
    wanted = (HERE / "package.json").read_text()
    MODULES.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".workflow-example.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = MODULES / "package.json"
        if stamp.exists() and stamp.read_text() == wanted and (MODULES / "node_modules").is_dir():
            return MODULES
        stamp.write_text(wanted)
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=MODULES,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if done.returncode != 0:
            stamp.unlink()
            if "ENOTFOUND" in done.stderr or "EAI_AGAIN" in done.stderr:
                pytest.skip(f"npm registry unreachable: {done.stderr[-300:]}")
            raise RuntimeError(f"npm install failed:\n{done.stdout}{done.stderr}")
    return MODULES


@dataclass
class LiveApp:
    """The running app and a client for what a user (or a reviewer) does."""

    url: str
    http: httpx.Client

    def generate(self, prompt: str) -> str:
        response = self.http.post("/generate", json={"prompt": prompt})
        assert response.status_code == 202, response.text
        run_id: str = response.json()["id"]
        return run_id

    def approve(self, run_id: str, approved: bool = True) -> httpx.Response:
        return self.http.post(f"/approve/{run_id}", json={"approved": approved})

    def image(self, run_id: str) -> dict[str, Any]:
        response = self.http.get(f"/images/{run_id}")
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found


@pytest.fixture
def live_app(qstash: QStashHarness) -> Iterator[LiveApp]:
    where = node_modules()
    copy = where / "app.mjs"  # ESM resolves packages from the script's own folder
    shutil.copyfile(HERE / "app.mjs", copy)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QSTASH_", "NODE"))}
    env.update(qstash.env(), OPENAI_API_KEY=FAKE_OPENAI_KEY, PORT="0")
    proc = subprocess.Popen(
        ["node", str(copy)],
        cwd=where,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("LISTENING "):
        proc.kill()
        raise RuntimeError(f"the app did not start: {line}{proc.stdout.read()}")
    url = f"http://127.0.0.1:{int(line.split()[1])}"
    with httpx.Client(base_url=url, timeout=30) as http:
        yield LiveApp(url, http)
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=1)
