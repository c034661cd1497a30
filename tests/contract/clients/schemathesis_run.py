"""Runs schemathesis against a standalone emulator, both inside one private network namespace
(`unshare -n`, set up by the caller): whatever URL the generated requests name as a destination
or callback, a delivery can reach nothing but 127.0.0.1.

`python schemathesis_run.py EMULATOR_PYTHON SPEC REPORT_DIR MAX_EXAMPLES SEED`
(run with the schemathesis venv's python). It starts the emulator and a local target, seeds one
resource of each kind (so operations on `{queueName}`, `{scheduleId}`, ... reach real objects
half of the time), runs `schemathesis run`, and prints `SCHEMATHESIS-DONE {json}`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

TOKEN = "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0="


class Answer(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _any(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status = 500 if "/fail" in self.path else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any


def call(base: str, method: str, path: str, body: Any = None, **headers: str) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {TOKEN}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for name, value in headers.items():
        req.add_header(name.replace("_", "-"), value)
    with urllib.request.urlopen(req, timeout=10) as answer:
        raw = answer.read()
    return json.loads(raw) if raw.strip() else None


def seed(base: str, target: str) -> dict[str, str]:
    """One live object of each kind; their ids go into the run's dictionaries."""
    call(base, "POST", "/v2/queues", {"queueName": "contract-queue", "parallelism": 1})
    call(base, "POST", "/v2/topics/contract-group/endpoints", {"endpoints": [{"url": target}]})
    schedule = call(
        base, "POST", f"/v2/schedules/{target}/scheduled", {"s": 1}, Upstash_Cron="0 0 1 1 *"
    )
    later = call(base, "POST", f"/v2/publish/{target}/later", {"m": 1}, Upstash_Delay="1d")
    call(
        base,
        "POST",
        f"/v2/publish/{target}/flow",
        {},
        Upstash_Flow_Control_Key="contract-fc",
        Upstash_Flow_Control_Value="parallelism=1",
    )
    dead = call(base, "POST", f"/v2/publish/{target}/fail", {}, Upstash_Retries="0")
    deadline = time.monotonic() + 20
    dlq_id = ""
    while not dlq_id and time.monotonic() < deadline:
        listed = call(base, "GET", f"/v2/dlq?messageId={dead['messageId']}")["messages"]
        dlq_id = listed[0]["dlqId"] if listed else ""
        time.sleep(0.05)
    return {
        "queueName": "contract-queue",
        "urlGroupName": "contract-group",
        "scheduleId": schedule["scheduleId"],
        "messageId": later["messageId"],
        "dlqId": dlq_id,
        "flowControlKey": "contract-fc",
        "destination": target + "/fuzzed",
    }


def config(values: dict[str, str]) -> str:
    lines = []
    for name, value in values.items():
        if value:
            lines += [f"[dictionaries.{name}]", f"values = [{json.dumps(value)}]", ""]
    lines.append("[parameters]")
    for name, value in values.items():
        if value:
            lines.append(f'"path.{name}" = {{ dictionary = "{name}", probability = 0.5 }}')
    return "\n".join(lines) + "\n"


def main() -> int:
    emulator_python, spec, report_dir, max_examples, seed_value = sys.argv[1:6]
    subprocess.run(["ip", "link", "set", "lo", "up"], check=False, capture_output=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    target = f"http://127.0.0.1:{server.server_address[1]}"
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)  # noqa: SIM115
    emulator = subprocess.Popen(
        [emulator_python, "-m", "qstash_emulator", "dev", "--port", "0", "--in-memory"],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        base = ""
        deadline = time.monotonic() + 30
        while not base and time.monotonic() < deadline and emulator.poll() is None:
            found = re.search(r"running at (http://\S+)", Path(log.name).read_text())
            base = found.group(1) if found else ""
            time.sleep(0.05)
        if not base:
            raise RuntimeError("emulator did not start: " + Path(log.name).read_text())
        values = seed(base, target)
        work = Path(report_dir)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        (work / "schemathesis.toml").write_text(config(values))
        cli = Path(sys.executable).parent / "schemathesis"
        cmd = [
            str(cli),
            "--config-file",
            str(work / "schemathesis.toml"),
            "run",
            spec,
            "--url",
            base,
            "--header",
            f"Authorization: Bearer {TOKEN}",
            "--checks",
            "all",
            "--max-examples",
            max_examples,
            "--seed",
            seed_value,
            "--phases",
            "examples,coverage,fuzzing",
            "--workers",
            "2",
            "--request-timeout",
            "10",
            "--no-color",
            "--generation-database",
            "none",
            "--report",
            "ndjson",
            "--report-ndjson-path",
            str(work / "events.ndjson"),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=work)
        (work / "output.txt").write_text(done.stdout + done.stderr)
        alive = emulator.poll() is None
        try:
            answered = "current" in call(base, "GET", "/v2/keys")
        except OSError:
            answered = False
        summary = {
            "exit_code": done.returncode,
            "ndjson": str(work / "events.ndjson"),
            "output": str(work / "output.txt"),
            "seeded": values,
            "emulator_alive": alive,
            "emulator_answered": answered,
        }
        print("SCHEMATHESIS-DONE " + json.dumps(summary), flush=True)
        return 0
    finally:
        emulator.terminate()
        try:
            emulator.wait(timeout=15)
        except subprocess.TimeoutExpired:
            emulator.kill()
        server.shutdown()
        print("--- emulator ---\n" + Path(log.name).read_text(), flush=True)


if __name__ == "__main__":
    sys.exit(main())
