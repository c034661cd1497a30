"""Virtual-time replay: a `* * * * *` schedule over 7 virtual days, against plain POSTs.

The emulator (in-process, virtual clock) holds one schedule firing every minute to a target in
another process; `advance("7d")` delivers its 10,080 messages, each a real signed HTTP request,
in cron order. The anchor, in the same run against the same target, is the same number of plain
sequential `aiohttp` POSTs from one client session — the least that replaying 10,080 deliveries
one after another can cost. Rounds alternate anchor and emulator; the result is the ratio of
medians (emulator throughput / anchor throughput).

    .venv/bin/python benchmarks/cron_replay.py              # 3 rounds, 7 days each
    .venv/bin/python benchmarks/cron_replay.py --days 1 --rounds 5 --json

Aim (issue 15): at least 0.8x the anchor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

AIM = 0.8
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "emulator"))


def start_target() -> tuple[subprocess.Popen[str], int]:
    """The target of publish_throughput.py (counts bodies per round), in its own process."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "publish_throughput.py"), "--serve", "target"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise SystemExit(f"target did not start: {line!r}")
    return proc, int(line.split()[1])


async def anchor_round(url: str, n: int) -> tuple[float, float]:
    """Deliveries per wall second and CPU seconds (this process) per delivery."""
    async with aiohttp.ClientSession() as session:
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(n):
            async with session.post(url, data=f'{{"i":{i}}}'.encode()) as response:
                await response.read()
        return n / (time.perf_counter() - start), (time.process_time() - cpu) / n


async def emulator_round(url: str, days: int) -> tuple[float, float, int]:
    from qstash_emulator import Emulator
    from qstash_emulator.parsing.publish_headers import parse_message_headers

    async with Emulator() as emu:
        spec = parse_message_headers(
            [("Upstash-Cron", "* * * * *"), ("Content-Type", "application/json")], emu.user.quota
        )
        emu.schedules.create(emu.user, url, spec, b'{"tick":1}', caller_ip="127.0.0.1")
        start, cpu = time.perf_counter(), time.process_time()
        await emu.aadvance(f"{days}d")
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        delivered = sum(1 for r in emu.deliveries if r.response is not None and r.response.ok)
    return delivered / elapsed, cpu / max(delivered, 1), delivered


async def bench(args: argparse.Namespace) -> dict[str, object]:
    proc, port = start_target()
    try:
        n = args.days * 24 * 60
        anchors: list[float] = []
        emulators: list[float] = []
        anchor_cpu: list[float] = []
        emulator_cpu: list[float] = []
        for r in range(args.rounds):
            rate, cpu = await anchor_round(f"http://127.0.0.1:{port}/hook/a{r}", n)
            anchors.append(rate)
            anchor_cpu.append(cpu)
            rate, cpu, delivered = await emulator_round(
                f"http://127.0.0.1:{port}/hook/e{r}", args.days
            )
            if delivered != n:
                raise SystemExit(f"expected {n} deliveries, got {delivered}")
            emulators.append(rate)
            emulator_cpu.append(cpu)
            if not args.json:
                print(
                    f"round {r + 1}: anchor {anchors[-1]:7.0f}/s  emulator {emulators[-1]:7.0f}/s"
                    f"  ratio {emulators[-1] / anchors[-1]:.2f}",
                    file=sys.stderr,
                )
    finally:
        proc.terminate()
        proc.wait()
    ratio = statistics.median(emulators) / statistics.median(anchors)
    return {
        "deliveries": n,
        "rounds": args.rounds,
        "anchor_per_s": statistics.median(anchors),
        "emulator_per_s": statistics.median(emulators),
        "ratio": ratio,
        "anchor_cpu_us": statistics.median(anchor_cpu) * 1e6,
        "emulator_cpu_us": statistics.median(emulator_cpu) * 1e6,
        "loop": type(asyncio.get_running_loop()).__module__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (if installed)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONPATH", str(HERE.parent / "emulator"))
    if args.uvloop:
        import uvloop

        result = uvloop.run(bench(args))
    else:
        result = asyncio.run(bench(args))
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{result['deliveries']} cron deliveries over {args.days} virtual days, "
        f"median of {args.rounds} rounds ({result['loop']})\n"
        f"  anchor (sequential aiohttp POSTs)  {result['anchor_per_s']:8.0f}/s\n"
        f"  emulator (advance)                 {result['emulator_per_s']:8.0f}/s\n"
        f"  ratio {result['ratio']:.2f} (aim >= {AIM}: "
        f"{'MET' if result['ratio'] >= AIM else 'NOT MET'})\n"
        f"  CPU per delivery (this process): anchor {result['anchor_cpu_us']:.0f} us, "
        f"emulator {result['emulator_cpu_us']:.0f} us "
        f"({result['emulator_cpu_us'] / result['anchor_cpu_us']:.2f}x)"
    )


if __name__ == "__main__":
    main()
