"""Publish -> delivered throughput of the dev server persisting to SQLite, against the same server
in memory, in the same run.

Reuses publish_throughput.py's machinery (target process, load client, child management): the
anchor is `qstash_emulator dev --in-memory`, the system under test `qstash_emulator dev
--data-dir <fresh temp dir>`. Rounds alternate after a warm-up of each; the result is the ratio
of the medians (SQLite / memory). Aim: >= 0.8.

    .venv/bin/python benchmarks/persistence_throughput.py [--messages N] [--rounds R] [--check]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import publish_throughput as pt

AIM = 0.8
MEMORY_CMD = "{python} -m qstash_emulator dev --in-memory --port {port}"
SQLITE_CMD = "{python} -m qstash_emulator dev --data-dir {data_dir} --port {port}"


async def _bench(args: argparse.Namespace) -> dict[str, object]:
    results: dict[str, list[pt.RoundResult]] = {"memory": [], "sqlite": []}
    data_dir = tempfile.mkdtemp(prefix="qstash-bench-data-")
    connector = aiohttp.TCPConnector(limit=args.concurrency + 8, limit_per_host=0)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        pt._children() as (logdir, children),
    ):
        target = await pt._start_helper("target", logdir, session, children)
        memory = await pt._start_emulator(MEMORY_CMD, logdir, session, children)
        memory.name = "memory"
        sqlite_cmd = SQLITE_CMD.replace("{data_dir}", data_dir)
        sqlite = await pt._start_emulator(sqlite_cmd, logdir, session, children)
        sqlite.name = "sqlite"
        systems = [("memory", memory), ("sqlite", sqlite)]

        async def one(system: str, server: pt.Child, label: str, n: int) -> pt.RoundResult:
            cpu_before = server.cpu_seconds()
            result = await pt._run_round(
                session,
                system=system,
                label=label,
                server_port=server.port,
                target_port=target.port,
                messages=n,
                concurrency=args.concurrency,
                body_bytes=args.body_bytes,
                timeout_s=args.round_timeout,
            )
            cpu_after = server.cpu_seconds()
            if cpu_before is not None and cpu_after is not None:
                result.server_cpu_us_per_msg = (cpu_after - cpu_before) / n * 1e6
            if not args.quiet:
                cpu = result.server_cpu_us_per_msg
                print(
                    f"  {system:7} {label:8} {result.msgs_per_s:7.0f} msg/s"
                    + (f"  server CPU {cpu:.0f} us/msg" if cpu is not None else ""),
                    file=sys.stderr,
                    flush=True,
                )
            return result

        if args.warmup:
            for system, server in systems:
                await one(system, server, "warm-up", args.warmup)
        for n in range(1, args.rounds + 1):
            for system, server in systems:
                results[system].append(await one(system, server, f"round {n}", args.messages))
    db = Path(data_dir) / "state.db"
    data_file_bytes = db.stat().st_size if db.exists() else None
    shutil.rmtree(data_dir, ignore_errors=True)
    memory_median = statistics.median(r.msgs_per_s for r in results["memory"])
    sqlite_median = statistics.median(r.msgs_per_s for r in results["sqlite"])

    def cpu(rs: list[pt.RoundResult]) -> float | None:
        values = [r.server_cpu_us_per_msg for r in rs if r.server_cpu_us_per_msg is not None]
        return round(statistics.median(values)) if values else None

    return {
        "messages": args.messages,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "memory_msgs_per_s": [round(r.msgs_per_s) for r in results["memory"]],
        "sqlite_msgs_per_s": [round(r.msgs_per_s) for r in results["sqlite"]],
        "memory_median": memory_median,
        "sqlite_median": sqlite_median,
        "ratio": sqlite_median / memory_median,
        "memory_cpu_us_per_msg": cpu(results["memory"]),
        "sqlite_cpu_us_per_msg": cpu(results["sqlite"]),
        "data_file_bytes": data_file_bytes,
        "aim": AIM,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=3000, help="messages per round (3000)")
    p.add_argument("--rounds", type=int, default=3, help="measured rounds per system (3)")
    p.add_argument("--warmup", type=int, default=500, help="warm-up messages per system (500)")
    p.add_argument("--concurrency", type=int, default=64, help="publishes in flight (64)")
    p.add_argument("--body-bytes", type=int, default=128, help="approx. body size (128)")
    p.add_argument("--round-timeout", type=float, default=120.0, help="fail a round after (120 s)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--check", action="store_true", help=f"exit 1 if the ratio is below {AIM}")
    p.add_argument("--quiet", action="store_true", help="no per-round lines on stderr")
    args = p.parse_args(argv)
    try:
        report = asyncio.run(_bench(args))
    except pt.BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 2
    ratio = float(report["ratio"])  # type: ignore[arg-type]
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"publish -> delivered, {args.messages} msgs/round, {args.concurrency} in flight, "
            f"{args.rounds} rounds\n"
            f"  in memory: {report['memory_msgs_per_s']} msg/s (median "
            f"{report['memory_median']:.0f}; server CPU {report['memory_cpu_us_per_msg']} us/msg)\n"
            f"  SQLite:    {report['sqlite_msgs_per_s']} msg/s (median "
            f"{report['sqlite_median']:.0f}; server CPU {report['sqlite_cpu_us_per_msg']} us/msg)\n"
            f"SQLite / memory = {ratio:.2f} (aim >= {AIM}): {'MET' if ratio >= AIM else 'NOT MET'}"
        )
    return 1 if args.check and ratio < AIM else 0


if __name__ == "__main__":
    sys.exit(main())
