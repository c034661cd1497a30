"""Memory held per delayed message in the in-process emulator (RSS per message).

Publishes N messages delayed a day (so every one is held: stored, logged once, timed) into an
`Emulator` on a virtual clock, through the same code path as `POST /v2/publish` after the HTTP
layer (`parse_message_headers` -> `Destinations.publish`), and reads the process's resident
set size before and after. Each run is a fresh subprocess, so nothing of an earlier round is
counted. The anchor, in the same subprocess, is the body itself: the same N bodies kept in a
list, which is what an ideal store could not avoid holding.

    .venv/bin/python benchmarks/held_messages.py                 # 100,000 messages, 3 rounds
    .venv/bin/python benchmarks/held_messages.py --messages 20000 --json

Aim (issue 15): at most 1.5 KB of RSS per held message (its 128 B body included).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

AIM_BYTES = 1536
ROOT = Path(__file__).resolve().parent.parent


def rss() -> int:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def measure(n: int, body_bytes: int) -> dict[str, float]:
    """One round, in this process: bytes of RSS per held message, and per anchor body."""
    from qstash_emulator import Emulator
    from qstash_emulator.parsing.publish_headers import parse_message_headers

    def body(i: int) -> bytes:
        return json.dumps({"i": i, "pad": "x" * body_bytes}).encode()[:body_bytes]

    # The anchor first: the bodies alone.
    gc.collect()
    before = rss()
    kept = [body(i) for i in range(n)]
    gc.collect()
    anchor = (rss() - before) / n
    del kept
    gc.collect()

    emu = Emulator(seed=1)
    back = emu.backend
    headers = [
        ("Content-Type", "application/json"),
        ("Upstash-Delay", "1d"),
        ("Upstash-Method", "POST"),
    ]

    def publish(start: int, count: int) -> None:
        user = emu.user
        for i in range(start, start + count):
            spec = parse_message_headers(headers, user.quota)
            back.destinations.publish(
                user, f"http://127.0.0.1:9/hook/{i % 100}", spec, body(i), caller_ip="127.0.0.1"
            )

    with emu:
        emu.call_soon(publish, 0, 1000)  # warm-up: first-use allocations are not per message
        gc.collect()
        before = rss()
        step = 10_000
        for start in range(1000, 1000 + n, step):
            emu.call_soon(publish, start, min(step, 1000 + n - start))
        gc.collect()
        after = rss()
        held = len(emu.pending_messages)
    if held != n + 1000:
        raise SystemExit(f"expected {n + 1000} held messages, found {held}")
    per_message = (after - before) / n
    return {"per_message": per_message, "anchor_body": anchor, "net": per_message - anchor}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--body-bytes", type=int, default=128)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--round", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.round:
        print(json.dumps(measure(args.messages, args.body_bytes)))
        return
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'emulator'}{os.pathsep}{ROOT / 'pytest_plugin'}"}
    rounds = []
    for _ in range(args.rounds):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--round",
                "--messages",
                str(args.messages),
                "--body-bytes",
                str(args.body_bytes),
            ],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        ).stdout
        rounds.append(json.loads(out.strip().splitlines()[-1]))
    result = {
        key: statistics.median(r[key] for r in rounds)
        for key in ("per_message", "anchor_body", "net")
    }
    result.update(messages=args.messages, body_bytes=args.body_bytes, rounds=len(rounds))
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{args.messages} messages delayed a day, {args.body_bytes} B bodies, "
        f"median of {len(rounds)} rounds (fresh process each)\n"
        f"  RSS per held message     {result['per_message']:8.0f} B  "
        f"(aim <= {AIM_BYTES} B: {'MET' if result['per_message'] <= AIM_BYTES else 'NOT MET'})\n"
        f"  anchor: the body alone   {result['anchor_body']:8.0f} B\n"
        f"  net of the body          {result['net']:8.0f} B; "
        f"held/body ratio {result['per_message'] / result['anchor_body']:.1f}x"
    )


if __name__ == "__main__":
    main()
