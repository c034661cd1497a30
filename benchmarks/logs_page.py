"""The cost of one `GET /v2/logs` page with 100,000 messages of history, against an empty server.

A standalone server (`python -m qstash_emulator dev`) is measured first empty (the anchor), then
after 100,000 messages were published to it (by `/v2/batch`, 1,000 a request, delayed a day so
each leaves its log entries and waits). Each measurement is the median wall time of `--requests`
sequential `GET /v2/logs` calls (the SDKs' default page of 100 entries). Also shown, for the
part that is the page itself: a server holding exactly one page of history (100 messages), and a
page deep in the history (following cursors).

    .venv/bin/python benchmarks/logs_page.py            # table
    .venv/bin/python benchmarks/logs_page.py --json
    .venv/bin/python benchmarks/logs_page.py --check    # exit 1 if the ratio to one page > 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int, history: int) -> subprocess.Popen[str]:
    env = dict(os.environ)
    paths = [str(ROOT / "emulator"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "qstash_emulator",
            "dev",
            "--in-memory",
            "--quiet",
            "--port",
            str(port),
            "--history-max-entries",
            str(history * 2),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("QSTASH_NEXT_SIGNING_KEY"):
            break
    if proc.poll() is not None:
        raise SystemExit("the server did not start")
    # Keep reading its output: a full pipe would block the server on its next write.
    threading.Thread(target=lambda: [None for _ in proc.stdout or ()], daemon=True).start()
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


async def fill(session: aiohttp.ClientSession, base: str, messages: int) -> None:
    destination = f"{base}/__capture/history"
    for start in range(0, messages, 1000):
        batch = [
            {"destination": destination, "body": str(i), "headers": {"Upstash-Delay": "1d"}}
            for i in range(start, min(messages, start + 1000))
        ]
        async with session.post(f"{base}/v2/batch", json=batch, headers=AUTH) as res:
            if res.status != 200:
                raise SystemExit(f"batch: {res.status} {await res.text()}")


async def page_times(
    session: aiohttp.ClientSession, base: str, requests: int, query: str = ""
) -> float:
    times = []
    for _ in range(requests):
        began = time.perf_counter()
        async with session.get(f"{base}/v2/logs{query}", headers=AUTH) as res:
            await res.read()
            if res.status != 200:
                raise SystemExit(f"logs: {res.status}")
        times.append(time.perf_counter() - began)
    return statistics.median(times)


async def deep_cursor(session: aiohttp.ClientSession, base: str, pages: int) -> str:
    cursor = ""
    for _ in range(pages):
        query = f"?cursor={cursor}" if cursor else ""
        async with session.get(f"{base}/v2/logs{query}", headers=AUTH) as res:
            cursor = (await res.json()).get("cursor", "")
    return cursor


async def measure(messages: int, requests: int) -> dict[str, Any]:
    results: dict[str, Any] = {"messages": messages, "requests": requests}
    async with aiohttp.ClientSession() as session:
        for name, count in (("empty", 0), ("one_page", 100), ("history", messages)):
            port = free_port()
            server = start_server(port, max(messages, 1000))
            base = f"http://127.0.0.1:{port}"
            try:
                began = time.perf_counter()
                await fill(session, base, count)
                filled = time.perf_counter() - began
                await page_times(session, base, 50)  # warm-up
                results[name] = {
                    "messages": count,
                    "fill_seconds": round(filled, 1),
                    "page_ms": round(await page_times(session, base, requests) * 1000, 3),
                }
                if name == "history":
                    cursor = await deep_cursor(session, base, 500)
                    deep = await page_times(session, base, requests, f"?cursor={cursor}")
                    results[name]["page_500_ms"] = round(deep * 1000, 3)
                    again = await page_times(session, base, requests)
                    results[name]["again_ms"] = round(again * 1000, 3)
            finally:
                stop(server)
    results["ratio_to_empty"] = round(
        results["history"]["page_ms"] / results["empty"]["page_ms"], 2
    )
    results["ratio_to_one_page"] = round(
        results["history"]["page_ms"] / results["one_page"]["page_ms"], 2
    )
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--requests", type=int, default=200, help="timed requests per server")
    p.add_argument("--json", action="store_true")
    p.add_argument("--check", action="store_true", help="exit 1 if the ratio to one page > 3")
    args = p.parse_args()
    r = asyncio.run(measure(args.messages, args.requests))
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print(f"GET /v2/logs (a page of 100), median of {args.requests} requests")
        print(f"{'server':<28}{'messages':>10}{'ms':>9}")
        print(f"{'empty (anchor)':<28}{0:>10}{r['empty']['page_ms']:>9.2f}")
        print(f"{'one page of history':<28}{100:>10}{r['one_page']['page_ms']:>9.2f}")
        h = r["history"]
        print(f"{'history, first page':<28}{h['messages']:>10}{h['page_ms']:>9.2f}")
        print(f"{'history, page 500':<28}{h['messages']:>10}{h['page_500_ms']:>9.2f}")
        print(
            f"ratio to empty: {r['ratio_to_empty']:.2f}; "
            f"ratio to one page of history: {r['ratio_to_one_page']:.2f}"
        )
    return 0 if not args.check or r["ratio_to_one_page"] <= 3 else 1


if __name__ == "__main__":
    sys.exit(main())
