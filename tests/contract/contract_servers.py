"""What the contract tests run the official clients against: a standalone emulator (the
`python -m qstash_emulator dev` process, on the wall clock) and a local HTTP target that
records every delivery and lets the client scripts poll what arrived."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

# Default user of the official dev server (and of the emulator).
TOKEN = "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0="
CURRENT_SIGNING_KEY = "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r"
NEXT_SIGNING_KEY = "sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs"

_STATUS_IN_PATH = re.compile(r"/status/(\d{3})(?:/|$)")


class Target:
    """A local destination on 127.0.0.1. Every request is recorded; a path containing
    `/status/NNN/` is answered with status NNN, any other with 200. `GET /__log?prefix=P`
    returns the recorded requests whose path starts with P, oldest first, as JSON."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="contract-target", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Target:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def log(self, prefix: str = "") -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.received if r["path"].startswith(prefix)]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        target = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: bytes, ctype: str = "text/plain") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                if parts.path == "/__log" and self.command == "GET":
                    prefix = parse_qs(parts.query).get("prefix", [""])[0]
                    self._answer(200, json.dumps(target.log(prefix)).encode(), "application/json")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                record = {
                    "method": self.command,
                    "path": parts.path,
                    "query": parts.query,
                    "url": target.url + self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    # Every header line as it arrived (a repeated header shows twice here).
                    "header_list": [[k.lower(), v] for k, v in self.headers.items()],
                    "body": body.decode("utf-8", "replace"),
                    "body_base64": base64.b64encode(body).decode(),
                    "time": time.time(),
                }
                with target._lock:
                    target.received.append(record)
                found = _STATUS_IN_PATH.search(parts.path)
                self._answer(int(found.group(1)) if found else 200, b"ok")

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        return Handler


class StandaloneEmulator:
    """`python -m qstash_emulator dev --port 0` as a child process on 127.0.0.1."""

    def __init__(self, python: str = sys.executable, *extra: str) -> None:
        self._cmd = [python, "-m", "qstash_emulator", "dev", "--host", "127.0.0.1", "--port", "0"]
        self._cmd += ["--in-memory"]  # a fresh server per run, as the official one
        self._cmd += list(extra)
        self._out = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            "w+", prefix="qstash-emulator-", suffix=".log", delete=False
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    @property
    def output(self) -> str:
        return Path(self._out.name).read_text(errors="replace")

    def env(self) -> dict[str, str]:
        return {
            "QSTASH_URL": self.url,
            "QSTASH_TOKEN": TOKEN,
            "QSTASH_CURRENT_SIGNING_KEY": CURRENT_SIGNING_KEY,
            "QSTASH_NEXT_SIGNING_KEY": NEXT_SIGNING_KEY,
        }

    def start(self, timeout: float = 30.0) -> StandaloneEmulator:
        self.proc = subprocess.Popen(
            self._cmd, stdout=self._out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"running at (http://\S+)", self.output)
            if found:
                self.url = found.group(1)
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the standalone emulator did not start:\n{self.output}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()

    def cleanup(self) -> None:
        self.stop()
        with contextlib.suppress(OSError):
            os.unlink(self._out.name)
