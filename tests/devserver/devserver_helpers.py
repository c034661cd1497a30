"""Start and stop a real `qstash-emulator dev` process for the dev-server tests."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

from qstash_emulator.core.users import DEV_SERVER_USERS, dev_token

READY = "Ready"  # the banner's last line
DEV_TOKEN = dev_token(*DEV_SERVER_USERS[0][:2])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_dev(*args: str) -> tuple[subprocess.Popen[str], int, list[str]]:
    """Start `dev` on a free port; returns once its banner (on stderr with JSON logs) is out."""
    port = free_port()
    json_log = "json" in args and "--quiet" not in args
    proc = subprocess.Popen(
        [sys.executable, "-m", "qstash_emulator", "dev", "--in-memory", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if json_log else subprocess.STDOUT,
        text=True,
    )
    stream = proc.stderr if json_log else proc.stdout
    assert stream is not None
    banner: list[str] = []
    for line in stream:
        banner.append(line.rstrip("\n"))
        if line.startswith(READY):
            break
    if proc.poll() is not None:
        raise RuntimeError("dev server exited:\n" + "\n".join(banner))
    return proc, port, banner


def stop(proc: subprocess.Popen[str]) -> str:
    """SIGTERM, wait for a clean exit; the rest of its stdout."""
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    return out or ""
