"""`qstash-emulator dev`: a drop-in for the official `qstash dev` server, and verbs to drive it.

The server adds a request log, seeded state and an optional virtual clock; the verbs
(`advance`, `run-until-idle`, `reset`, `now`, `trigger`, `run-now`) drive a running one.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import io
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .devserver.remote import Remote, RemoteError

if TYPE_CHECKING:
    from .emulator import Emulator

# The verbs only talk HTTP: the server's modules load when `dev` runs (a verb starts in a blink).
LEVELS = ("debug", "info", "warning", "error")
DEFAULT_DATA_DIR = ".qstash-emulator"  # the dev server's state, under the working directory

__all__ = ["main", "parser", "run"]


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("qstash-emulator")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def _normalize(argv: list[str]) -> list[str]:
    # The official CLI spells flags Go-style: `-port=8080`, `-quota pro`.
    out = []
    for arg in argv:
        if arg.startswith("-") and not arg.startswith("--") and len(arg) > 2:
            arg = "-" + arg
        out.append(arg)
    return out


def start_time(text: str) -> float:
    """Unix seconds, or an ISO 8601 time (`2025-01-01T00:00:00Z`)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (unix seconds or ISO 8601 like 2025-01-01T00:00:00Z)"
        ) from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give the time zone: {text!r} (e.g. a trailing Z)")
    return parsed.timestamp()


def parser() -> argparse.ArgumentParser:
    """The `qstash-emulator` argument parser: `dev` and its options, and the verbs."""
    p = argparse.ArgumentParser(prog="qstash-emulator", description=__doc__)
    p.add_argument("--version", action="version", version=f"qstash-emulator {version()}")
    sub = p.add_subparsers(dest="command", required=True)
    dev = sub.add_parser("dev", help="start the emulator (like `qstash dev`)")
    dev.add_argument("--port", type=port_number, default=8080, help="port (default 8080)")
    dev.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    dev.add_argument("--quota", choices=["payg", "pro"], default="payg", help="plan limits")
    dev.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed for ids (same seed, same ids; default: 0 on a virtual clock, random on the "
        "real one, so ids never repeat across restarts)",
    )
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
    dev.add_argument(
        "--history-max-entries",
        type=int,
        default=100_000,
        metavar="N",
        help="log entries kept per user, oldest dropped first (default 100000)",
    )
    dev.add_argument(
        "--history-max-age",
        metavar="DURATION",
        help="drop log entries older than this, e.g. 3d (default: no age limit)",
    )
    dev.add_argument(
        "--keep-deliveries",
        type=int,
        default=100_000,
        metavar="N",
        help="delivery attempts kept for inspection (default 100000)",
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
    dev.add_argument("--daily-limit", type=int, help="messages a day per user (429 past it)")
    dev.add_argument("--burst-limit", type=int, help="requests a second on non-publish endpoints")
    dev.add_argument("--chat-requests-limit", type=int, help="chat requests a minute")
    dev.add_argument("--chat-tokens-limit", type=int, help="chat tokens a minute")
    dev.add_argument(
        "--clock",
        choices=["real", "virtual"],
        default="real",
        help="real (default) or virtual: time moves only via /__emulator/advance",
    )
    dev.add_argument(
        "--start-time",
        type=start_time,
        metavar="TIME",
        help="virtual clock's start (ISO 8601 or unix seconds; default: now)",
    )
    dev.add_argument("--config", metavar="FILE", help="seeded state: a TOML or YAML file")
    dev.add_argument(
        "--log-level", choices=list(LEVELS), default="info", help="request log level (info)"
    )
    dev.add_argument("--log-format", choices=["text", "json"], default="text")
    dev.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    dev.add_argument("--quiet", action="store_true", help="no request log")
    _add_persistence_args(dev)

    def verb(name: str, help: str) -> argparse.ArgumentParser:
        v = sub.add_parser(name, help=help)
        v.add_argument("--url", help="the emulator (default $QSTASH_URL or http://127.0.0.1:8080)")
        v.add_argument(
            "--token", help="a user's QStash token (default $QSTASH_TOKEN or the dev one)"
        )
        v.add_argument("--json", action="store_true", help="print the server's JSON answer")
        return v

    verb("advance", "move a virtual clock forward").add_argument("duration", help="e.g. 1h30m")
    verb("run-until-idle", "run due work, jumping time, until none is left").add_argument(
        "--limit", help="at most this far ahead (default a year)"
    )
    verb("reset", "forget all state (seeded state is re-applied)").add_argument(
        "--seed", type=int, help="new seed for ids"
    )
    verb("now", "print the emulator's clock")
    verb("trigger", "fire a schedule now").add_argument("schedule_id")
    verb("run-now", "deliver a delayed or retrying message now").add_argument("message_id")
    return p


# -- the server ---------------------------------------------------------------------------------
def configure(emulator: Emulator, args: argparse.Namespace) -> Callable[[], None]:
    """The setup the command line asks for, as a function run at start and after each reset.

    A reset lifts rewrites and limits, and forgets queues, groups and schedules.
    """
    from .devserver.config import ConfigError, Seeder, load_config

    rewrites = []
    for rule in args.rewrite:
        published, sep, local = rule.partition("=")
        if not sep or not published or not local:
            raise SystemExit(f"--rewrite wants PUBLISHED=LOCAL, got {rule!r}")
        rewrites.append((published, local))
    config = None
    if args.config:
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            raise SystemExit(f"qstash-emulator: {exc}") from None
    seeder = Seeder(emulator)

    def setup() -> None:
        for published, local in rewrites:
            emulator.delivery.rewrite(published, local)
        emulator.limits.configure(
            daily_messages=args.daily_limit,
            burst=args.burst_limit,
            chat_requests=args.chat_requests_limit,
            chat_tokens=args.chat_tokens_limit,
        )
        if config is not None:
            seeder.apply(config)

    return setup


def _add_persistence_args(dev: argparse.ArgumentParser) -> None:
    where = dev.add_mutually_exclusive_group()
    where.add_argument(
        "--data-dir",
        default=DEFAULT_DATA_DIR,
        help=f"keep state in DIR/state.db across restarts (default {DEFAULT_DATA_DIR}/ here)",
    )
    where.add_argument(
        "--in-memory",
        action="store_true",
        help="keep nothing: every start is empty (the official dev server's behaviour)",
    )


def _data_dir_of(args: argparse.Namespace) -> str | None:
    return None if args.in_memory else str(args.data_dir)


async def _serve(args: argparse.Namespace) -> None:
    from .core.gc_tuning import tune_for_server
    from .devserver.config import ConfigError
    from .devserver.request_log import RequestLog, attach
    from .emulator import Emulator
    from .parsing.durations import DurationError, parse_duration

    try:
        retention = parse_duration(args.finished_retention)
    except DurationError as exc:
        raise SystemExit(f"--finished-retention: {exc}") from None
    try:
        max_age = None if args.history_max_age is None else parse_duration(args.history_max_age)
    except DurationError as exc:
        raise SystemExit(f"--history-max-age: {exc}") from None
    # A virtual clock starts now by default: an app's own `time.time()` agrees with it.
    start = args.start_time if args.start_time is not None else float(int(time.time()))
    emulator = Emulator(
        clock=args.clock,
        start_time=start,
        host=args.host,
        port=args.port,
        quota=args.quota,
        seed=args.seed,
        data_dir=_data_dir_of(args),
        finished_retention=retention,
        keep_deliveries=args.keep_deliveries,
        delivery_concurrency=args.delivery_concurrency,
        history_max_entries=args.history_max_entries,
        history_max_age=max_age,
        allowed_origins=args.allow_origin,
        allowed_hosts=args.allow_host,
    )
    setup = configure(emulator, args)
    if not args.quiet:
        colour = {"always": True, "never": False}.get(args.color)
        if isinstance(sys.stdout, io.TextIOWrapper):
            # The log flushes once per loop turn on a terminal, every 50 ms otherwise: not a
            # write per line (PYTHONUNBUFFERED and terminals would make each one a system call).
            sys.stdout.reconfigure(line_buffering=False, write_through=False)
        attach(
            emulator,
            RequestLog(sys.stdout, level=args.log_level, fmt=args.log_format, colour=colour),
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
    try:
        setup()  # on the loop, before any request is handled (no await since the start)
    except ConfigError as exc:
        await emulator.stop_async()
        raise SystemExit(f"qstash-emulator: {exc}") from None
    emulator.add_reset_hook(setup)
    tune_for_server()  # everything is loaded and set up by now
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # With JSON log lines on stdout, the banner goes to stderr so stdout stays machine-readable.
    out = sys.stderr if args.log_format == "json" and not args.quiet else sys.stdout
    print(_banner(emulator, args), file=out, flush=True)
    try:
        await stop.wait()
    finally:
        await emulator.stop_async()
        print("QStash emulator stopped.", file=out, flush=True)


class StartError(Exception):
    """The server could not start: one line for the user, exit status 2."""


def port_number(text: str) -> int:
    """A port: ASCII digits (a full-width digit is not a number), 0 to 65535."""
    from .parsing.plain_int import plain_int

    try:
        port = plain_int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number (0-65535): {text!r}")
    return port


def _banner(emulator: Emulator, args: argparse.Namespace | None = None) -> str:
    lines = [f"QStash emulator {version()} running at {emulator.url}", *_storage_lines(emulator)]
    lines.append(f"Dashboard: {emulator.dashboard_url}")
    lines.append("")
    if emulator.clock.virtual:
        now = emulator.control.clock_json()["time"]
        lines.append(f"Virtual clock at {now}: time moves only when you move it, e.g.")
        lines.append(f"  qstash-emulator advance 1h --url {emulator.url}")
        lines.append(f"  (or POST {emulator.url}/__emulator/advance?by=1h with a token below)")
        lines.append("")
    if args is not None and args.config:
        lines.append(f"Seeded state from {args.config} (re-applied on every reset).")
        lines.append("")
    lines.append("Test users (the same as the official `qstash dev` server's):")
    for i, user in enumerate(emulator.users, start=1):
        lines.append("")
        lines.append(f"User {i}" + ("" if i <= 4 else f" ({user.name})"))
        for key, value in user.env(emulator.url).items():
            lines.append(f'{key}="{value}"')
    lines += ["", "Ready: Ctrl-C to stop."]
    return "\n".join(lines)


def _storage_lines(emulator: Emulator) -> list[str]:
    where = emulator.store.location
    if where is None:
        return ["State is kept in memory only: a restart starts empty (--in-memory)."]
    directory = os.path.dirname(where)
    return [
        f"State is kept in {where} ({emulator.restored} unfinished messages resumed).",
        f"To start empty: stop the server and delete {directory}, or pass --in-memory.",
    ]


# -- the verbs ----------------------------------------------------------------------------------
def run_verb(args: argparse.Namespace) -> int:
    remote = Remote(args.url, args.token)
    try:
        answer: Any
        if args.command == "advance":
            answer = remote.advance(args.duration)
        elif args.command == "run-until-idle":
            answer = remote.run_until_idle(args.limit)
        elif args.command == "reset":
            answer = remote.reset(args.seed)
        elif args.command == "now":
            answer = remote.now()
        elif args.command == "trigger":
            answer = remote.trigger(args.schedule_id)
        else:
            remote.run_now(args.message_id)
            answer = {"messageId": args.message_id}
    except RemoteError as exc:
        print(f"qstash-emulator {args.command}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(answer))
    elif isinstance(answer, dict) and "time" in answer:
        print(answer["time"])
    else:
        items = answer if isinstance(answer, list) else [answer]
        print("\n".join(str(item.get("messageId", item)) for item in items))
    return 0


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
        from .store import StoreError  # here: the verbs stay light

        try:
            run(_serve(args))
        except StartError as exc:
            print(exc, file=sys.stderr, flush=True)
            return 2
        except StoreError as exc:
            print(f"qstash-emulator: {exc}", file=sys.stderr, flush=True)
            return 2
        return 0
    return run_verb(args)


if __name__ == "__main__":
    sys.exit(main())
