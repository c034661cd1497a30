"""Dashboard page load and live-update latency with 10,000 messages, beside an in-run anchor.

An in-process emulator (virtual clock) is filled with 10,000 messages through `/v2/batch`
(delivered, delayed and failed ones, so every state is present). Then, in interleaved rounds:

* anchor        - ANCHOR: GET on a trivial aiohttp handler (`web.Response(text="ok")`) served by
                  a second app on the emulator's own event loop: the cost of one local HTTP
                  round trip on this machine
* messages      - GET /__dashboard/messages (the full first page of 50)
* fragment      - GET /__dashboard/messages?fragment=1 (what a live update fetches)
* search        - GET /__dashboard/messages?q=... (a text search through all bodies)
* state_filter  - GET /__dashboard/messages?state=failed
* message       - GET /__dashboard/messages/{id} (timeline, attempts, signature claims)
* dlq, schedules - the other list pages
* runs          - GET /__dashboard/runs (the first 50 of 1,000 workflow runs, each started by
                  an Init message, every tenth with five steps)
* run           - GET /__dashboard/runs/{id} (a run's step timeline)

Server time is a page's median latency minus the anchor's. Live-update latency is measured with
an open event stream: publish one message through the API, then time until the stream's
`change` event arrives, and until the page fragment that shows the message is fetched.
Aim: one page of messages in well under 100 ms server time (checked: < 50 ms).

    .venv/bin/python benchmarks/dashboard_latency.py [--messages N] [--runs N] [--rounds R] [--json]
                                                      [--check]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from typing import Any

import aiohttp
from aiohttp import web
from qstash_emulator import Emulator

AIM_PAGE_SERVER_MS = 50.0
BATCH = 100


async def fill(session: aiohttp.ClientSession, emu: Emulator, count: int) -> str:
    """Publish `count` messages in batches: 70% delivered, 20% delayed a day, 10% failed."""
    headers = {"Authorization": f"Bearer {emu.token}"}
    ok, bad = f"{emu.url}/__capture/ok", f"{emu.url}/__capture/bad"
    emu.call_soon(lambda: emu.faults.add(bad, status=500))
    first = ""
    for start in range(0, count, BATCH):
        entries = []
        for n in range(start, min(count, start + BATCH)):
            kind = n % 10
            entry: dict[str, Any] = {
                "destination": bad if kind == 9 else ok,
                "body": json.dumps({"order": n, "note": f"customer {n % 977}"}),
                "headers": {"Content-Type": "application/json", "Upstash-Retries": "0"},
            }
            if kind in (7, 8):
                entry["headers"]["Upstash-Delay"] = "1d"
            entries.append(entry)
        async with session.post(f"{emu.url}/v2/batch", json=entries, headers=headers) as r:
            assert r.status == 200, await r.text()
            answer = await r.json()
            first = first or answer[0]["messageId"]
    await emu.acall(emu.asettle())
    return first


async def fill_runs(session: aiohttp.ClientSession, emu: Emulator, count: int) -> str:
    """Start `count` workflow runs (Init messages); every tenth gets five Run steps."""
    headers = {"Authorization": f"Bearer {emu.token}"}
    url = f"{emu.url}/__capture/workflow"

    def run_headers(n: int, init: bool) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "Upstash-Workflow-RunId": f"wfr_bench_{n}",
            "Upstash-Workflow-Url": url,
            "Upstash-Workflow-Init": "true" if init else "false",
        }

    for start in range(0, count, BATCH):
        entries = [
            {"destination": url, "body": json.dumps({"n": n}), "headers": run_headers(n, True)}
            for n in range(start, min(count, start + BATCH))
        ]
        async with session.post(f"{emu.url}/v2/batch", json=entries, headers=headers) as r:
            assert r.status == 200, await r.text()
    await emu.acall(emu.asettle())
    for n in range(0, count, 10):
        for step in range(1, 6):
            body = {"stepId": step, "stepName": f"s{step}", "stepType": "Run", "out": '"ok"'}
            async with session.post(
                f"{emu.url}/v2/publish/{url}",
                data=json.dumps(body),
                headers={**headers, **run_headers(n, False)},
            ) as r:
                assert r.status == 200, await r.text()
    await emu.acall(emu.asettle())
    return "wfr_bench_0"


async def timed_get(session: aiohttp.ClientSession, url: str) -> float:
    t0 = time.perf_counter()
    async with session.get(url) as r:
        await r.read()
        assert r.status == 200, (url, r.status)
    return (time.perf_counter() - t0) * 1000


async def page_loads(
    session: aiohttp.ClientSession,
    emu: Emulator,
    anchor: str,
    message_id: str,
    run_id: str,
    rounds: int,
) -> dict[str, list[float]]:
    base = emu.url + "/__dashboard"
    targets = {
        "anchor": anchor,
        "messages": base + "/messages",
        "fragment": base + "/messages?fragment=1",
        "search": base + "/messages?q=customer+976",
        "state_filter": base + "/messages?state=failed",
        "message": f"{base}/messages/{message_id}",
        "dlq": base + "/dlq",
        "schedules": base + "/schedules",
        "runs": base + "/runs",
        "run": f"{base}/runs/{run_id}",
    }
    for url in targets.values():  # warm-up: templates compiled, index built
        await timed_get(session, url)
    times: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(rounds):
        for name, url in targets.items():
            times[name].append(await timed_get(session, url))
    return times


async def live_updates(
    session: aiohttp.ClientSession, emu: Emulator, rounds: int
) -> dict[str, list[float]]:
    headers = {"Authorization": f"Bearer {emu.token}", "Upstash-Delay": "1h"}
    event_ms: list[float] = []
    shown_ms: list[float] = []
    async with session.get(emu.url + "/__dashboard/events") as stream:
        lines = stream.content

        async def next_change() -> None:
            async for raw in lines:
                if raw.startswith(b"event: change"):
                    await lines.readline()  # its data line
                    return
            raise RuntimeError("event stream ended")

        await next_change()  # the first event on connect
        for n in range(rounds):
            await asyncio.sleep(0.06)  # past the stream's coalescing window: one change each
            t0 = time.perf_counter()
            async with session.post(
                f"{emu.url}/v2/publish/{emu.url}/__capture/live", data=f"live {n}", headers=headers
            ) as r:
                message_id = (await r.json())["messageId"]
            await next_change()
            event_ms.append((time.perf_counter() - t0) * 1000)
            async with session.get(emu.url + "/__dashboard/messages?fragment=1") as page:
                assert message_id in await page.text()
            shown_ms.append((time.perf_counter() - t0) * 1000)
    return {"live_event": event_ms, "live_shown": shown_ms}


async def start_anchor(emu: Emulator) -> tuple[str, web.AppRunner]:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def serve() -> tuple[str, web.AppRunner]:
        app = web.Application()
        app.router.add_get("/", ok)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}/", runner

    return await emu.acall(serve())


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with Emulator() as emu:
        anchor, runner = await start_anchor(emu)
        try:
            async with aiohttp.ClientSession() as session:
                t0 = time.perf_counter()
                first = await fill(session, emu, args.messages)
                fill_s = time.perf_counter() - t0
                emu.call_soon(
                    lambda: emu.schedules.create(
                        emu.user, f"{emu.url}/__capture/cron", _cron_spec(), b"", caller_ip="::1"
                    )
                )
                run_id = await fill_runs(session, emu, args.runs)
                times = await page_loads(session, emu, anchor, first, run_id, args.rounds)
                times.update(await live_updates(session, emu, args.live_rounds))
        finally:
            await emu.acall(runner.cleanup())
    medians = {name: statistics.median(v) for name, v in times.items()}
    base = medians["anchor"]
    return {
        "messages": args.messages,
        "fill_seconds": round(fill_s, 2),
        "median_ms": {k: round(v, 3) for k, v in medians.items()},
        "ratio_to_anchor": {k: round(v / base, 1) for k, v in medians.items()},
        "server_ms": {k: round(v - base, 3) for k, v in medians.items() if k != "anchor"},
    }


def _cron_spec() -> Any:
    from qstash_emulator.parsing.publish_headers import MessageSpec

    return MessageSpec(cron="*/5 * * * *")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--messages", type=int, default=10_000)
    p.add_argument("--runs", type=int, default=1_000, help="workflow runs")
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--live-rounds", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--check", action="store_true", help=f"exit 1 unless a page < {AIM_PAGE_SERVER_MS} ms"
    )
    args = p.parse_args()
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['messages']} messages (filled in {result['fill_seconds']} s)")
        print(f"{'request':<14}{'median ms':>11}{'x anchor':>10}{'server ms':>11}")
        for name, median in result["median_ms"].items():
            server = result["server_ms"].get(name)
            shown = "" if server is None else f"{server:.2f}"
            ratio = result["ratio_to_anchor"][name]
            print(f"{name:<14}{median:>11.2f}{ratio:>10.1f}{shown:>11}")
    page = result["server_ms"]["messages"]
    if args.check and page >= AIM_PAGE_SERVER_MS:
        print(f"FAIL: a page of messages took {page:.1f} ms server time", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
