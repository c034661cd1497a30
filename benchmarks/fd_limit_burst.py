"""1,000 messages due at the same instant on a standalone server with a low file-descriptor limit.

The server (`python -m qstash_emulator dev`) runs in a child process whose RLIMIT_NOFILE is set to
`--nofile` (256 by default, a laptop's `ulimit -n`); the destination runs in another child with
the normal limit. All messages carry the same `Upstash-Not-Before` and `Upstash-Retries: 0`, so
any attempt the emulator cannot make shows up in the DLQ at once. The result is the DLQ count
(aim: 0) and, as a ratio against an anchor run in the same script with the machine's normal
limit, the time from the due instant until every message is delivered.

    .venv/bin/python benchmarks/fd_limit_burst.py            # table
    .venv/bin/python benchmarks/fd_limit_burst.py --json     # machine-readable
    .venv/bin/python benchmarks/fd_limit_burst.py --check    # exit 1 unless the DLQ stays empty
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0="
AUTH = {"Authorization": f"Bearer {TOKEN}"}

TARGET = """
import asyncio, sys
from aiohttp import web
seen = set()
async def hook(request):
    seen.add(await request.read())
    return web.Response(text="ok")
async def count(request):
    return web.Response(text=str(len(seen)))
async def main():
    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_get("/count", count)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    await site.start()
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(ROOT / "emulator"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


def start(cmd: list[str], nofile: int | None, ready: str) -> subprocess.Popen[str]:
    def limit() -> None:
        os.setsid()
        if nofile is not None:
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))

    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=child_env(),
        preexec_fn=limit,  # the limit must be set in the child, before exec
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    for line in proc.stdout:
        if ready in line:
            break
        if time.monotonic() > deadline:
            break
    if proc.poll() is not None:
        raise SystemExit(f"child {cmd[:4]} did not start")
    # Keep reading its output: a full pipe would block the child on its next write.
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True).start()
    OUTPUT[proc.pid] = lines
    return proc


OUTPUT: dict[int, list[str]] = {}


def stop(proc: subprocess.Popen[str]) -> str:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    time.sleep(0.1)  # let the reader take the last lines
    return "".join(OUTPUT.pop(proc.pid, []))


async def dlq_count(session: aiohttp.ClientSession, base: str) -> int:
    total, cursor = 0, ""
    while True:
        query = f"?count=100&cursor={cursor}" if cursor else "?count=100"
        async with session.get(f"{base}/v2/dlq{query}", headers=AUTH) as res:
            data = await res.json()
        total += len(data["messages"])
        cursor = data.get("cursor", "")
        if not cursor:
            return total


async def burst(messages: int, nofile: int | None, timeout: float) -> dict[str, Any]:
    target_port, port = free_port(), free_port()
    target = start([sys.executable, "-c", TARGET, str(target_port)], None, "ready")
    server = start(
        [
            sys.executable,
            "-m",
            "qstash_emulator",
            "dev",
            "--in-memory",
            "--quiet",
            "--port",
            str(port),
        ],
        nofile,
        "QSTASH_NEXT_SIGNING_KEY",
    )
    base, hook = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{target_port}/hook"
    try:
        connector = aiohttp.TCPConnector(limit=16)
        async with aiohttp.ClientSession(connector=connector) as session:
            due = int(time.time()) + 3 + messages // 1000
            headers = {**AUTH, "Upstash-Not-Before": str(due), "Upstash-Retries": "0"}

            async def publish(i: int) -> None:
                async with session.post(
                    f"{base}/v2/publish/{hook}", data=str(i), headers=headers
                ) as res:
                    if res.status != 200:
                        raise SystemExit(f"publish {i}: {res.status} {await res.text()}")

            for start_at in range(0, messages, 200):
                await asyncio.gather(
                    *(publish(i) for i in range(start_at, min(messages, start_at + 200)))
                )
            published = time.time()
            if published >= due:
                raise SystemExit("publishing took longer than the due delay; use fewer messages")
            await asyncio.sleep(due - time.time())
            started = time.monotonic()
            delivered = dead = 0
            while time.monotonic() - started < timeout:
                async with session.get(f"http://127.0.0.1:{target_port}/count") as res:
                    delivered = int(await res.text())
                dead = await dlq_count(session, base)
                if delivered + dead >= messages:
                    break
                await asyncio.sleep(0.05)
            elapsed = time.monotonic() - started
    finally:
        output = stop(server)
        stop(target)
    return {
        "nofile": nofile,
        "messages": messages,
        "delivered": delivered,
        "dlq": dead,
        "seconds": round(elapsed, 3),
        "too_many_open_files_lines": output.count("Too many open files"),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--messages", type=int, default=1000)
    p.add_argument("--nofile", type=int, default=256, help="the server's RLIMIT_NOFILE")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--json", action="store_true")
    p.add_argument("--check", action="store_true", help="exit 1 unless the DLQ stays empty")
    args = p.parse_args()
    anchor = asyncio.run(burst(args.messages, None, args.timeout))
    limited = asyncio.run(burst(args.messages, args.nofile, args.timeout))
    ratio = limited["seconds"] / anchor["seconds"] if anchor["seconds"] else float("nan")
    result = {"anchor": anchor, "limited": limited, "time_ratio": round(ratio, 2)}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.messages} messages due at once, Upstash-Retries: 0")
        print(f"{'run':<24}{'delivered':>10}{'in DLQ':>8}{'seconds':>9}")
        for name, run in (("normal fd limit", anchor), (f"ulimit -n {args.nofile}", limited)):
            print(f"{name:<24}{run['delivered']:>10}{run['dlq']:>8}{run['seconds']:>9.2f}")
        print(f"time ratio (limited / normal): {ratio:.2f}; DLQ under the limit: {limited['dlq']}")
    ok = limited["dlq"] == 0 and anchor["dlq"] == 0 and limited["delivered"] == args.messages
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
