"""Finding (and on a fresh machine, installing) the browser the dashboard tests drive.

The tests use Debian's `chromium` through Playwright's `executable_path`; Playwright's own
browser download (`playwright install`) is never used. If the browser is missing and we are
root, it is installed with apt-get once per machine (a file lock keeps xdist workers from running
apt-get side by side). Under CI=true a browser that is still missing fails the run; elsewhere the
tests are skipped with a message that says what to install.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_HINT = (
    "the dashboard's browser tests need Debian's chromium at /usr/bin/chromium: "
    "run `sudo apt-get install -y chromium` (Playwright's own browser download is not used)"
)
_LOCK = Path(tempfile.gettempdir()) / "qstash-emulator-chromium-install.lock"


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _install() -> str | None:
    """apt-get install chromium under a file lock; the failure's output, or None."""
    with open(_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be installing: wait for it
        if os.path.exists(CHROMIUM):
            return None
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (
            ["apt-get", "update"],
            ["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
        ):
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                return f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-2000:]}"
    return None


def ensure_chromium() -> tuple[str | None, str]:
    """(path to the browser, or None) and why it is missing."""
    if os.path.exists(CHROMIUM):
        return CHROMIUM, ""
    problem = INSTALL_HINT
    if _is_root() and shutil.which("apt-get"):
        failure = _install()
        if os.path.exists(CHROMIUM):
            return CHROMIUM, ""
        problem = f"{INSTALL_HINT}; installing it failed: {failure}"
    return None, problem


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require_chromium() -> str:
    """The browser's path; otherwise fail under CI=true, or skip saying what to install."""
    import pytest

    path, problem = ensure_chromium()
    if path is None:
        if in_ci():
            pytest.fail(problem, pytrace=False)  # CI must run the browser tests, never skip them
        pytest.skip(problem)
    return path
