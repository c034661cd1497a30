"""The contract suite's own environments: one virtualenv per official Python SDK line and a
node project for the JS SDK, made on first use and cached under the git-ignored `.venvs/`.

Each environment is built once (under a file lock, so parallel runs wait rather than race) and
marked done with a stamp naming what was installed; a later run with the same stamp reuses it.
Delete `.venvs/` (or one folder in it) to pick up newer releases. Only an unreachable package
registry turns into a skip; any other failure to build is an error.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("QSTASH_CONTRACT_CACHE", str(ROOT / ".venvs")))
INSTALL_TIMEOUT = 900.0
# Fail fast when the registry does not answer, rather than pip's minutes of retries.
PIP_NET = ("--retries", "2", "--timeout", "30")
NPM_NET = ("--fetch-retries=1", "--fetch-retry-mintimeout=2000", "--fetch-retry-maxtimeout=10000")

# What a pip or npm run prints when it cannot reach its registry (and nothing else does).
_OFFLINE = re.compile(
    r"NewConnectionError|Failed to establish a new connection|Temporary failure in name "
    r"resolution|Name or service not known|Network is unreachable|Connection refused|"
    r"ConnectTimeout|Read timed out|No route to host|ProxyError|"
    r"ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|"
    r"network request to .* failed",
)


class RegistryUnreachable(Exception):
    """The package registry could not be reached: the contract tests skip."""


class EnvBuildFailed(Exception):
    """The registry answered, but the environment could not be built: a real failure."""


@dataclass(frozen=True)
class PythonEnv:
    name: str
    requirements: tuple[str, ...]

    @property
    def path(self) -> Path:
        return CACHE / self.name

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"


@dataclass(frozen=True)
class NodeEnv:
    name: str
    packages: tuple[str, ...]
    node: str = field(default_factory=lambda: shutil.which("node") or "node")

    @property
    def path(self) -> Path:
        return CACHE / self.name


# The environments, one per official client line.
QSTASH_2 = PythonEnv("qstash-2.0.5", ("qstash==2.0.5", "httpx"))
QSTASH_3 = PythonEnv("qstash-3", ("qstash>=3,<4", "openai"))
SCHEMATHESIS = PythonEnv("schemathesis", ("schemathesis>=4,<5",))
QSTASH_JS = NodeEnv("qstash-js", ("@upstash/qstash",))
# Upstash Workflow: the Python SDK under FastAPI + uvicorn, the JS SDK under express.
WORKFLOW_PY = PythonEnv("workflow-py", ("upstash-workflow>=2,<3", "fastapi", "uvicorn", "httpx"))
WORKFLOW_JS = NodeEnv("workflow-js", ("@upstash/workflow", "express"))


@contextmanager
def _locked(name: str) -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _stamp(path: Path) -> Path:
    return path / ".contract-stamp.json"


def _is_built(path: Path, wanted: dict[str, object]) -> bool:
    try:
        stamp = json.loads(_stamp(path).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(stamp, dict) and stamp.get("wanted") == wanted


def _mark_built(path: Path, wanted: dict[str, object], installed: str) -> None:
    stamp = {"wanted": wanted, "built_at": time.time(), "installed": installed}
    _stamp(path).write_text(json.dumps(stamp, indent=1))


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    try:
        done = subprocess.run(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        raise RegistryUnreachable(f"{' '.join(cmd)} timed out after {exc.timeout:.0f}s") from None
    output = done.stdout + done.stderr
    if done.returncode != 0:
        found = _OFFLINE.search(output)
        if found:
            start = output.rfind("\n", 0, found.start()) + 1
            end = output.find("\n", found.end())
            line = output[start : end if end >= 0 else None].strip()[:240]
            raise RegistryUnreachable(f"{' '.join(cmd[:4])} ...: {line}")
        raise EnvBuildFailed(f"{' '.join(cmd)} exited {done.returncode}:\n{_tail(output, 40)}")
    return output


def _tail(text: str, lines: int = 8) -> str:
    kept = [line for line in text.splitlines() if "is ignored: it is neither" not in line]
    return "\n".join(kept[-lines:])


def ensure_python(env: PythonEnv) -> Path:
    """The env's python, after building the venv if it is not there yet."""
    wanted: dict[str, object] = {
        "requirements": list(env.requirements),
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
    }
    with _locked(env.name):
        if _is_built(env.path, wanted) and env.python.exists():
            return env.python
        shutil.rmtree(env.path, ignore_errors=True)
        _run([sys.executable, "-m", "venv", str(env.path)])
        try:
            _run([str(env.python), "-m", "pip", "install", "-q", *PIP_NET, *env.requirements])
            frozen = _run([str(env.python), "-m", "pip", "freeze"])
        except BaseException:
            shutil.rmtree(env.path, ignore_errors=True)
            raise
        _mark_built(env.path, wanted, frozen)
        return env.python


def ensure_node(env: NodeEnv) -> Path:
    """The node project folder with the env's packages in node_modules."""
    npm = shutil.which("npm")
    if npm is None or shutil.which(env.node) is None:
        raise EnvBuildFailed("node and npm are needed for the JS client's contract tests")
    wanted: dict[str, object] = {"packages": list(env.packages)}
    with _locked(env.name):
        if _is_built(env.path, wanted) and (env.path / "node_modules").is_dir():
            return env.path
        shutil.rmtree(env.path, ignore_errors=True)
        env.path.mkdir(parents=True)
        pkgs = list(env.packages)
        package = {"name": "qstash-contract", "private": True, "type": "module"}
        (env.path / "package.json").write_text(json.dumps(package))
        try:
            _run(
                [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", *NPM_NET, *pkgs],
                cwd=env.path,
            )
            listing = _run([npm, "ls", "--depth=0"], cwd=env.path)
        except BaseException:
            shutil.rmtree(env.path, ignore_errors=True)
            raise
        _mark_built(env.path, wanted, listing)
        return env.path
