"""The client runs of the contract suite.

Every official client runs once per session, as a subprocess of its own environment, against
its own standalone emulator (so one client's key rotation or queue deletion cannot touch
another's); all of them start together on first use and the tests read their results.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from contract_envs import (
    QSTASH_2,
    QSTASH_3,
    QSTASH_JS,
    SCHEMATHESIS,
    WORKFLOW_JS,
    WORKFLOW_PY,
    NodeEnv,
    PythonEnv,
    RegistryUnreachable,
    ensure_node,
    ensure_python,
)
from contract_servers import TOKEN, StandaloneEmulator, Target

CLIENTS_DIR = Path(__file__).parent / "clients"
RUN_TIMEOUT = 240.0
MARKER = "CONTRACT-RESULTS "


@dataclass(frozen=True)
class Client:
    name: str
    env: PythonEnv | NodeEnv
    script: str
    prefix: str


CLIENTS = {
    c.name: c
    for c in (
        Client("qstash-3", QSTASH_3, "qstash_v3.py", "/py3"),
        Client("qstash-2.0.5", QSTASH_2, "qstash_v2.py", "/py2"),
        Client("qstash-js", QSTASH_JS, "qstash_js.mjs", "/js"),
        Client("openai", QSTASH_3, "openai_client.py", "/openai"),
        Client("workflow-py", WORKFLOW_PY, "workflow_py.py", "/wfpy"),
        Client("workflow-js", WORKFLOW_JS, "workflow_js.mjs", "/wfjs"),
    )
}


@dataclass
class RunResult:
    scenarios: dict[str, dict[str, Any]]
    emulator_alive: bool
    emulator_answered: bool
    output: str


def ensure(env: PythonEnv | NodeEnv) -> Path:
    return ensure_python(env) if isinstance(env, PythonEnv) else ensure_node(env)


def emulator_answers(emu: StandaloneEmulator) -> bool:
    request = urllib.request.Request(
        emu.url + "/v2/keys", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status == 200 and "current" in json.loads(answer.read())
    except OSError:
        return False


class Runs:
    """Builds the environments and runs the clients in the background, once per session."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="contract")
        self._envs: dict[str, Future[Path]] = {}
        self._runs: dict[str, Future[RunResult]] = {}

    def start_envs(self) -> None:
        """Build (or find) every environment, in parallel."""
        if not self._envs:
            for env in (QSTASH_3, QSTASH_2, QSTASH_JS, SCHEMATHESIS, WORKFLOW_PY, WORKFLOW_JS):
                self._envs[env.name] = self._pool.submit(ensure, env)

    def start(self) -> None:
        """Start every client run (each waits for its environment)."""
        self.start_envs()
        if not self._runs:
            for client in CLIENTS.values():
                self._runs[client.name] = self._pool.submit(self._run, client)

    def env(self, env: PythonEnv | NodeEnv) -> Path:
        self.start_envs()
        try:
            return self._envs[env.name].result(timeout=1200)
        except RegistryUnreachable as exc:
            pytest.skip(f"package registry unreachable, cannot build {env.name}: {exc}")

    def result(self, name: str) -> RunResult:
        self.start()
        try:
            return self._runs[name].result(timeout=1200 + RUN_TIMEOUT)
        except RegistryUnreachable as exc:
            pytest.skip(f"package registry unreachable, cannot run {name}: {exc}")

    def _run(self, client: Client) -> RunResult:
        where = self._envs[client.env.name].result()
        script = CLIENTS_DIR / client.script
        if isinstance(client.env, PythonEnv):
            cmd = [str(client.env.python), str(script)]
        else:
            # ESM resolves packages from the script's own folder: run a copy beside node_modules.
            copy = where / script.name
            shutil.copyfile(script, copy)
            cmd = [client.env.node, str(copy)]
        emu = StandaloneEmulator().start()
        output = ""
        try:
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith(("QSTASH_", "NODE"))},
                **emu.env(),
                "CONTRACT_TARGET": self.target.url,
                "CONTRACT_PREFIX": client.prefix,
            }
            try:
                done = subprocess.run(
                    cmd,
                    cwd=where if isinstance(client.env, NodeEnv) else CLIENTS_DIR,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                    timeout=RUN_TIMEOUT,
                )
                output = done.stdout + done.stderr
            except subprocess.TimeoutExpired as exc:
                output = f"timed out after {RUN_TIMEOUT}s: {exc.stdout!r} {exc.stderr!r}"
            scenarios: dict[str, dict[str, Any]] = {}
            for line in output.splitlines():
                if line.startswith(MARKER):
                    scenarios = json.loads(line[len(MARKER) :])
            alive, answered = emu.alive(), emulator_answers(emu)
        finally:
            emu.stop()
            output += "\n--- emulator ---\n" + emu.output
            emu.cleanup()
        return RunResult(scenarios, alive, answered, output)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
