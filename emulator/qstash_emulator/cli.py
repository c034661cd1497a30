"""`qstash-emulator dev`: a drop-in for the official `qstash dev` server."""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import signal
import sys
from collections.abc import Coroutine
from typing import Any

from .core.history import DEFAULT_KEEP_DELIVERIES, DEFAULT_MAX_LOG_ENTRIES
from .emulator import Emulator
from .parsing.durations import DurationError, parse_duration
from .parsing.plain_int import plain_int

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
    dev.add_argument("--port", type=port_number, default=8080, help="port (default 8080)")
    dev.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    dev.add_argument("--quota", choices=["payg", "pro"], default="payg", help="plan limits")
    dev.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed for ids (same seed, same ids; default: random, so ids never repeat)",
    )
    dev.add_argument(
        "--rewrite",
        action="append",
        default=[],
        metavar="PUBLISHED=LOCAL",
        help="deliver URLs under PUBLISHED to LOCAL, e.g. https://myapp.example.com=http://127.0.0.1:3000",
    )
    dev.add_argument(
        "--history-max-entries",
        type=int,
        default=DEFAULT_MAX_LOG_ENTRIES,
        metavar="N",
        help=f"log entries kept per user, oldest dropped first (default {DEFAULT_MAX_LOG_ENTRIES})",
    )
    dev.add_argument(
        "--history-max-age",
        metavar="DURATION",
        help="drop log entries older than this, e.g. 3d (default: no age limit)",
    )
    dev.add_argument(
        "--keep-deliveries",
        type=int,
        default=DEFAULT_KEEP_DELIVERIES,
        metavar="N",
        help=f"delivery attempts kept for inspection (default {DEFAULT_KEEP_DELIVERIES})",
    )
    dev.add_argument(
        "--delivery-concurrency",
        type=int,
        metavar="N",
        help="deliveries on the network at once (default: a quarter of the fd limit)",
    )
    dev.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="also accept browser requests from this origin, e.g. https://app.example:8443 "
        "('*': any); by default only local origins",
    )
    dev.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="HOST",
        help="also accept this Host name, e.g. host.docker.internal ('*': any); by default "
        "only loopback names and the bind address",
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
    try:
        max_age = None if args.history_max_age is None else parse_duration(args.history_max_age)
    except DurationError as exc:
        raise SystemExit(f"--history-max-age: {exc}") from None
    emulator = Emulator(
        clock="real",
        host=args.host,
        port=args.port,
        quota=args.quota,
        seed=args.seed,
        keep_deliveries=args.keep_deliveries,
        delivery_concurrency=args.delivery_concurrency,
        history_max_entries=args.history_max_entries,
        history_max_age=max_age,
        allowed_origins=args.allow_origin,
        allowed_hosts=args.allow_host,
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
    try:
        await emulator.start_async()
    except OSError as exc:
        await emulator.stop_async()
        if exc.errno == errno.EADDRINUSE:
            raise StartError(
                f"qstash-emulator: port {args.port} on {args.host} is already in use; "
                "stop what is using it or choose another with --port"
            ) from None
        raise StartError(
            f"qstash-emulator: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
        ) from None
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


class StartError(Exception):
    """The server could not start: one line for the user, exit status 2."""


def port_number(text: str) -> int:
    try:
        port = plain_int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number (0-65535): {text!r}")
    return port


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
        try:
            run(_serve(args))
        except StartError as exc:
            print(exc, file=sys.stderr, flush=True)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
