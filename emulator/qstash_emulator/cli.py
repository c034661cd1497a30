"""`qstash-emulator dev`: a drop-in for the official `qstash dev` server."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Coroutine
from typing import Any

from .emulator import Emulator
from .parsing.durations import DurationError, parse_duration

__all__ = ["main", "parser", "run"]


def _normalize(argv: list[str]) -> list[str]:
    # The official CLI spells flags Go-style: `-port=8080`, `-quota pro`.
    out = []
    for arg in argv:
        if arg.startswith("-") and not arg.startswith("--") and len(arg) > 2:
            arg = "-" + arg
        out.append(arg)
    return out


def parser() -> argparse.ArgumentParser:
    """The `qstash-emulator` argument parser (the `dev` command and its options)."""
    p = argparse.ArgumentParser(prog="qstash-emulator", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    dev = sub.add_parser("dev", help="start the emulator (like `qstash dev`)")
    dev.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    dev.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    dev.add_argument("--quota", choices=["payg", "pro"], default="payg", help="plan limits")
    dev.add_argument("--seed", type=int, default=0, help="seed for ids")
    dev.add_argument(
        "--rewrite",
        action="append",
        default=[],
        metavar="PUBLISHED=LOCAL",
        help="deliver URLs under PUBLISHED to LOCAL, e.g. https://myapp.example.com=http://127.0.0.1:3000",
    )
    dev.add_argument(
        "--finished-retention",
        default="60s",
        metavar="DURATION",
        help="how long a delivered or failed message stays readable by id (default 60s; 0 = not)",
    )
    dev.add_argument("--daily-limit", type=int, help="messages a day per user (429 past it)")
    dev.add_argument("--burst-limit", type=int, help="requests a second on non-publish endpoints")
    dev.add_argument("--chat-requests-limit", type=int, help="chat requests a minute")
    dev.add_argument("--chat-tokens-limit", type=int, help="chat tokens a minute")
    return p


async def _serve(args: argparse.Namespace) -> None:
    try:
        retention = parse_duration(args.finished_retention)
    except DurationError as exc:
        raise SystemExit(f"--finished-retention: {exc}") from None
    emulator = Emulator(
        clock="real",
        host=args.host,
        port=args.port,
        quota=args.quota,
        seed=args.seed,
        finished_retention=retention,
    )
    for rule in args.rewrite:
        published, sep, local = rule.partition("=")
        if not sep or not published or not local:
            raise SystemExit(f"--rewrite wants PUBLISHED=LOCAL, got {rule!r}")
        emulator.delivery.rewrite(published, local)
    emulator.limits.configure(
        daily_messages=args.daily_limit,
        burst=args.burst_limit,
        chat_requests=args.chat_requests_limit,
        chat_tokens=args.chat_tokens_limit,
    )
    await emulator.start_async()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(_banner(emulator), flush=True)
    try:
        await stop.wait()
    finally:
        await emulator.stop_async()
        print("QStash emulator stopped.", flush=True)


def _banner(emulator: Emulator) -> str:
    lines = [f"QStash emulator running at {emulator.url}", ""]
    lines.append("Test users (the same as the official `qstash dev` server's):")
    for i, user in enumerate(emulator.users, start=1):
        lines.append("")
        lines.append(f"User {i}")
        for key, value in user.env(emulator.url).items():
            lines.append(f'{key}="{value}"')
    return "\n".join(lines)


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run `main` on uvloop when it is installed (`qstash-emulator[fast]`).

    Otherwise on asyncio's own loop; QSTASH_EMULATOR_LOOP=asyncio keeps asyncio's loop anyway.
    """
    if os.environ.get("QSTASH_EMULATOR_LOOP", "") != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            uvloop.run(main)
            return
    asyncio.run(main)


def main(argv: list[str] | None = None) -> int:
    """Run the command line (default: `sys.argv`); returns the exit status.

    Accepts the dev server's single-dash options (`-port=8080`) as well as `--port 8080`.
    """
    args = parser().parse_args(_normalize(sys.argv[1:] if argv is None else argv))
    if args.command == "dev":
        run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
