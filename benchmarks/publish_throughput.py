"""Publish -> delivered throughput of the standalone QStash emulator, against an in-run anchor.

Three kinds of processes, all on 127.0.0.1:

* TARGET  - a minimal aiohttp server that answers 200 to every POST and counts distinct
            bodies per round (``POST /hook/<round>``); ``GET /wait/<round>?n=N`` long-polls
            until N distinct bodies of that round have arrived.
* RELAY   - the anchor: a plain aiohttp server with the same URL shape as QStash
            (``POST /v2/publish/<destination URL>``). It answers 201 ``{"messageId": ...}``
            first and then forwards the body to the destination in a background task over a
            shared keep-alive ``ClientSession`` - i.e. the same two HTTP hops as the emulator,
            "publish then deliver", with zero emulator logic.
* EMULATOR - ``python -m qstash_emulator dev --port PORT`` (the system under test).

The load client is this script: one ``ClientSession`` with a bounded number of messages in
flight, posting N messages and timing from the first post until the target has seen all N.
Anchor and emulator rounds alternate after a warm-up; the result is the ratio of the medians,
because absolute numbers on a shared machine are noise.

Run ``python benchmarks/publish_throughput.py --help`` for the options; see README.md here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp
from aiohttp import web

HOST = "127.0.0.1"
AIM = 0.85
# The default QStash dev-server token (also what `npx @upstash/qstash-cli dev` prints).
DEV_TOKEN = "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0="
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EMULATOR_CMD = "{python} -m qstash_emulator dev --in-memory --port {port}"
READY_TIMEOUT_S = 30.0
POLL_INTERVAL_S = 0.05


class BenchError(RuntimeError):
    """A round or a child process failed; the message says why."""


# --------------------------------------------------------------------------------------------
# Child process: TARGET
# --------------------------------------------------------------------------------------------


class _RoundCounter:
    __slots__ = ("bodies", "changed", "total")

    def __init__(self) -> None:
        self.bodies: set[bytes] = set()
        self.total = 0
        self.changed = asyncio.Event()


def _make_target_app() -> web.Application:
    rounds: dict[str, _RoundCounter] = {}

    def counter(round_id: str) -> _RoundCounter:
        c = rounds.get(round_id)
        if c is None:
            c = rounds[round_id] = _RoundCounter()
        return c

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        c = counter(request.match_info["round"])
        c.total += 1
        c.bodies.add(body)
        c.changed.set()
        return web.Response(text="ok")

    async def wait(request: web.Request) -> web.Response:
        c = counter(request.match_info["round"])
        n = int(request.query.get("n", "0"))
        deadline = time.monotonic() + float(request.query.get("timeout", "0"))
        while len(c.bodies) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            c.changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(c.changed.wait(), remaining)
        return web.json_response({"distinct": len(c.bodies), "total": c.total})

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook/{round}", hook)
    app.router.add_get("/wait/{round}", wait)
    app.router.add_get("/health", health)
    return app


# --------------------------------------------------------------------------------------------
# Child process: RELAY (the anchor)
# --------------------------------------------------------------------------------------------


def _make_relay_app() -> web.Application:
    app = web.Application()
    tasks: set[asyncio.Task[None]] = set()
    state: dict[str, aiohttp.ClientSession] = {}
    failures = 0

    async def forward(url: str, body: bytes, content_type: str, message_id: str) -> None:
        nonlocal failures
        try:
            async with state["session"].post(
                url,
                data=body,
                headers={"Content-Type": content_type, "Upstash-Message-Id": message_id},
            ) as resp:
                await resp.read()
                if resp.status >= 300:
                    failures += 1
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            failures += 1
            print(f"relay: forward to {url} failed: {exc!r}", file=sys.stderr)

    async def publish(request: web.Request) -> web.Response:
        url = request.match_info["destination"]
        if request.query_string:
            url = f"{url}?{request.query_string}"
        body = await request.read()
        message_id = f"msg_{uuid.uuid4().hex}"
        task = asyncio.get_running_loop().create_task(
            forward(url, body, request.headers.get("Content-Type", "application/json"), message_id)
        )
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return web.json_response({"messageId": message_id}, status=201)

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"pending": len(tasks), "failures": failures})

    async def on_startup(_: web.Application) -> None:
        state["session"] = aiohttp.ClientSession()

    async def on_cleanup(_: web.Application) -> None:
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await state["session"].close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_post("/v2/publish/{destination:.+}", publish)
    app.router.add_get("/health", health)
    return app


async def _serve(role: str) -> None:
    app = _make_target_app() if role == "target" else _make_relay_app()
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"PORT {port}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


# --------------------------------------------------------------------------------------------
# Parent: child process management
# --------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _group_cpu_seconds(pgid: int) -> float | None:
    """Sum of utime + stime of the live processes in process group ``pgid`` (from /proc)."""
    proc_dir = Path("/proc")
    if not (proc_dir / str(pgid) / "stat").exists():
        return None
    ticks = 0
    for entry in proc_dir.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # Fields after "(comm)": state ppid pgrp ... utime(14) stime(15), 1-based overall.
        rest = stat[stat.rindex(")") + 2 :].split()
        if int(rest[2]) == pgid:
            ticks += int(rest[11]) + int(rest[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Child:
    """A server the benchmark talks to; ``proc`` is None for one it did not start."""

    name: str
    proc: subprocess.Popen[bytes] | None
    log_path: Path | None = None
    log_file: IO[bytes] | None = None
    port: int = 0

    def log_tail(self, max_chars: int = 3000) -> str:
        if self.log_file is None or self.log_path is None:
            return "(not started by the benchmark)"
        self.log_file.flush()
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return text[-max_chars:]

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) used so far by the child's process group; Linux only."""
        return None if self.proc is None else _group_cpu_seconds(self.proc.pid)

    def check_alive(self) -> None:
        if self.proc is None:
            return
        rc = self.proc.poll()
        if rc is not None:
            raise BenchError(
                f"{self.name} exited with code {rc}; its output:\n{self.log_tail() or '(none)'}"
            )


def _spawn(name: str, argv: Sequence[str], logdir: Path, *, stdout_pipe: bool) -> Child:
    log_path = logdir / f"{name}.log"
    log_file = log_path.open("wb")
    env = dict(os.environ)
    # Let `-m qstash_emulator` import the working tree even if the package is not installed.
    src = str(REPO_ROOT / "emulator")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if stdout_pipe else log_file,
        stderr=log_file,
        env=env,
        cwd=REPO_ROOT,
        start_new_session=True,  # Ctrl-C goes to us; we terminate children in `finally`
    )
    return Child(name=name, proc=proc, log_path=log_path, log_file=log_file)


def _stop(child: Child) -> None:
    proc = child.proc
    if proc is None:
        return
    if proc.poll() is None:
        # The whole process group, so a wrapper in --emulator-cmd (a profiler, `sh -c`, ...)
        # does not leave the real server behind.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            print(f"warning: {child.name} ignored SIGTERM for 10 s; killing it", file=sys.stderr)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()
    if child.log_file is not None:
        child.log_file.close()


async def _read_port_line(child: Child) -> int:
    assert child.proc is not None and child.proc.stdout is not None
    stdout = child.proc.stdout
    deadline = time.monotonic() + READY_TIMEOUT_S
    loop = asyncio.get_running_loop()
    line_fut = loop.run_in_executor(None, stdout.readline)
    while True:
        done, _ = await asyncio.wait({line_fut}, timeout=POLL_INTERVAL_S)
        if done:
            line = line_fut.result().decode(errors="replace").strip()
            if line.startswith("PORT "):
                return int(line.split()[1])
            child.check_alive()
            raise BenchError(f"{child.name}: unexpected first line {line!r}\n{child.log_tail()}")
        child.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(f"{child.name} did not report its port within {READY_TIMEOUT_S} s")


async def _wait_http_ready(child: Child, session: aiohttp.ClientSession, path: str) -> None:
    """Poll until the child answers any HTTP response on ``path``."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    url = f"http://{HOST}:{child.port}{path}"
    last_error = ""
    while True:
        child.check_alive()
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                await resp.read()
                return
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            last_error = repr(exc)
        if time.monotonic() > deadline:
            raise BenchError(
                f"{child.name} not answering on {url} after {READY_TIMEOUT_S} s "
                f"(last error: {last_error})\n{child.log_tail()}"
            )
        await asyncio.sleep(POLL_INTERVAL_S)


async def _start_helper(
    role: str, logdir: Path, session: aiohttp.ClientSession, children: list[Child]
) -> Child:
    child = _spawn(
        role,
        [sys.executable, str(Path(__file__).resolve()), "--serve", role],
        logdir,
        stdout_pipe=True,
    )
    children.append(child)
    child.port = await _read_port_line(child)
    await _wait_http_ready(child, session, "/health")
    return child


async def _start_emulator(
    cmd_template: str, logdir: Path, session: aiohttp.ClientSession, children: list[Child]
) -> Child:
    port = _free_port()
    argv = shlex.split(cmd_template.format(python=shlex.quote(sys.executable), port=port))
    child = _spawn("emulator", argv, logdir, stdout_pipe=False)
    child.port = port
    children.append(child)
    await _wait_http_ready(child, session, "/")
    return child


# --------------------------------------------------------------------------------------------
# Parent: the load client
# --------------------------------------------------------------------------------------------


@dataclass
class RoundResult:
    system: str  # "raw" or "emulator"
    label: str  # "warm-up" or "round N"
    messages: int
    seconds: float
    publish_seconds: float  # until every publish was answered
    msgs_per_s: float
    duplicates: int  # deliveries beyond the distinct bodies (at-least-once redeliveries)
    # CPU time of the system under test (relay or emulator process) per message, if known.
    server_cpu_us_per_msg: float | None = None


async def _run_round(
    session: aiohttp.ClientSession,
    *,
    system: str,
    label: str,
    server_port: int,
    target_port: int,
    messages: int,
    concurrency: int,
    body_bytes: int,
    timeout_s: float,
) -> RoundResult:
    round_id = uuid.uuid4().hex[:12]
    destination = f"http://{HOST}:{target_port}/hook/{round_id}"
    publish_url = f"http://{HOST}:{server_port}/v2/publish/{destination}"
    headers = {"Authorization": f"Bearer {DEV_TOKEN}", "Content-Type": "application/json"}
    pad = "x" * max(0, body_bytes - 40)
    # Distinct bodies, so the target can count distinct messages and spot redeliveries.
    bodies = [json.dumps({"r": round_id, "i": i, "p": pad}).encode() for i in range(messages)]
    counter = itertools.count()
    errors: list[str] = []

    async def worker() -> None:
        while not errors:
            i = next(counter)
            if i >= messages:
                return
            try:
                async with session.post(publish_url, data=bodies[i], headers=headers) as resp:
                    payload = await resp.read()
                    if resp.status not in (200, 201, 202):
                        errors.append(f"HTTP {resp.status}: {payload[:300]!r}")
            except (aiohttp.ClientError, OSError) as exc:
                errors.append(repr(exc))

    async def wait_delivered() -> dict[str, int]:
        url = f"http://{HOST}:{target_port}/wait/{round_id}"
        params = {"n": str(messages), "timeout": str(timeout_s)}
        async with session.get(
            url, params=params, timeout=aiohttp.ClientTimeout(total=timeout_s + 10)
        ) as resp:
            result: dict[str, int] = await resp.json()
            return result

    async def publish_all() -> float:
        await asyncio.gather(*(worker() for _ in range(min(concurrency, messages))))
        return time.perf_counter() - start

    start = time.perf_counter()
    waiter = asyncio.ensure_future(wait_delivered())
    try:
        publish_seconds = await asyncio.wait_for(publish_all(), timeout_s)
    except asyncio.TimeoutError:
        waiter.cancel()
        raise BenchError(
            f"{system} {label}: publishing {messages} messages took more than {timeout_s:.0f} s"
        ) from None
    except BaseException:
        waiter.cancel()
        raise
    if errors:
        waiter.cancel()
        raise BenchError(f"{system} {label}: a publish failed: {errors[0]}")
    try:
        counts = await waiter
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        raise BenchError(
            f"{system} {label}: asking the target for its count failed: {exc!r}"
        ) from None
    elapsed = time.perf_counter() - start
    if counts["distinct"] < messages:
        raise BenchError(
            f"{system} {label}: only {counts['distinct']}/{messages} messages reached the target "
            f"within {timeout_s:.0f} s"
        )
    return RoundResult(
        system=system,
        label=label,
        messages=messages,
        seconds=elapsed,
        publish_seconds=publish_seconds,
        msgs_per_s=messages / elapsed,
        duplicates=counts["total"] - counts["distinct"],
    )


@dataclass
class Report:
    messages: int
    concurrency: int
    rounds: int
    body_bytes: int
    aim: float
    raw: list[RoundResult] = field(default_factory=list)
    emulator: list[RoundResult] = field(default_factory=list)
    warmup: list[RoundResult] = field(default_factory=list)

    @property
    def raw_median(self) -> float:
        return statistics.median(r.msgs_per_s for r in self.raw)

    @property
    def emulator_median(self) -> float | None:
        if not self.emulator:
            return None
        return statistics.median(r.msgs_per_s for r in self.emulator)

    @staticmethod
    def _median_cpu(results: list[RoundResult]) -> float | None:
        values = [r.server_cpu_us_per_msg for r in results if r.server_cpu_us_per_msg is not None]
        return statistics.median(values) if values else None

    @property
    def raw_cpu_median(self) -> float | None:
        return self._median_cpu(self.raw)

    @property
    def emulator_cpu_median(self) -> float | None:
        return self._median_cpu(self.emulator)

    @property
    def ratio(self) -> float | None:
        emu = self.emulator_median
        return None if emu is None else emu / self.raw_median

    @property
    def paired_ratios(self) -> list[float]:
        return [e.msgs_per_s / r.msgs_per_s for r, e in zip(self.raw, self.emulator, strict=False)]

    def to_json(self) -> dict[str, Any]:
        ratio = self.ratio
        return {
            "messages": self.messages,
            "concurrency": self.concurrency,
            "rounds": self.rounds,
            "body_bytes": self.body_bytes,
            "raw_msgs_per_s_median": self.raw_median,
            "emulator_msgs_per_s_median": self.emulator_median,
            "ratio": ratio,
            "paired_ratios": self.paired_ratios,
            "raw_server_cpu_us_per_msg_median": self.raw_cpu_median,
            "emulator_server_cpu_us_per_msg_median": self.emulator_cpu_median,
            "aim": self.aim,
            "meets_aim": None if ratio is None else ratio >= self.aim,
            "rounds_detail": [
                asdict(r) for r in self.warmup + _interleave(self.raw, self.emulator)
            ],
        }

    def to_text(self) -> str:
        lines = [
            f"publish -> delivered throughput: {self.messages} msgs/round, "
            f"{self.concurrency} in flight, {self.body_bytes} B bodies, "
            f"{self.rounds} rounds after warm-up",
            "",
            f"{'':10}{'raw relay msg/s':>17}{'emulator msg/s':>17}{'ratio':>8}",
        ]
        for i, raw in enumerate(self.raw):
            emu = self.emulator[i] if i < len(self.emulator) else None
            emu_s = f"{emu.msgs_per_s:17.0f}" if emu else f"{'-':>17}"
            ratio_s = f"{emu.msgs_per_s / raw.msgs_per_s:8.2f}" if emu else f"{'-':>8}"
            lines.append(f"{raw.label:10}{raw.msgs_per_s:17.0f}{emu_s}{ratio_s}")
        emu_med = self.emulator_median
        ratio = self.ratio
        lines.append(
            f"{'median':10}{self.raw_median:17.0f}"
            + (f"{emu_med:17.0f}" if emu_med is not None else f"{'-':>17}")
            + (f"{ratio:8.2f}" if ratio is not None else f"{'-':>8}")
        )
        lines.append("")
        if ratio is None:
            lines.append("emulator skipped (--anchor-only)")
        else:
            verdict = "MET" if ratio >= self.aim else "NOT MET"
            lines.append(
                f"emulator/raw = {ratio:.2f} (ratio of medians; aim >= {self.aim:.2f}): {verdict}"
            )
        raw_cpu, emu_cpu = self.raw_cpu_median, self.emulator_cpu_median
        if raw_cpu is not None and emu_cpu is not None and raw_cpu > 0:
            lines.append(
                f"server CPU per message (median): raw relay {raw_cpu:.0f} us, "
                f"emulator {emu_cpu:.0f} us ({emu_cpu / raw_cpu:.1f}x)"
            )
        dups = sum(r.duplicates for r in self.raw + self.emulator)
        if dups:
            lines.append(f"note: {dups} duplicate deliveries seen (not counted as throughput)")
        return "\n".join(lines)


def _interleave(a: list[RoundResult], b: list[RoundResult]) -> list[RoundResult]:
    out: list[RoundResult] = []
    for i in range(max(len(a), len(b))):
        out.extend(x[i] for x in (a, b) if i < len(x))
    return out


@contextlib.asynccontextmanager
async def _children() -> AsyncIterator[tuple[Path, list[Child]]]:
    children: list[Child] = []
    with tempfile.TemporaryDirectory(prefix="qstash-bench-") as logdir:
        try:
            yield Path(logdir), children
        finally:
            for child in reversed(children):
                _stop(child)


async def _bench(args: argparse.Namespace) -> Report:
    report = Report(
        messages=args.messages,
        concurrency=args.concurrency,
        rounds=args.rounds,
        body_bytes=args.body_bytes,
        aim=AIM,
    )
    progress = sys.stderr if not args.quiet else None
    # SIGTERM cancels the run like Ctrl-C does, so the `finally` below still stops the children.
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)

    def say(msg: str) -> None:
        if progress is not None:
            print(msg, file=progress, flush=True)

    connector = aiohttp.TCPConnector(limit=args.concurrency + 8, limit_per_host=0)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        _children() as (
            logdir,
            children,
        ),
    ):
        target = await _start_helper("target", logdir, session, children)
        relay = await _start_helper("relay", logdir, session, children)
        emulator = None
        if args.emulator_port is not None:
            emulator = Child(name="emulator", proc=None, port=args.emulator_port)
            await _wait_http_ready(emulator, session, "/")
        elif not args.anchor_only:
            emulator = await _start_emulator(args.emulator_cmd, logdir, session, children)
        systems: list[tuple[str, Child]] = [("raw", relay)]
        if emulator is not None:
            systems.append(("emulator", emulator))

        async def one(system: str, server: Child, label: str, messages: int) -> RoundResult:
            for child in children:
                child.check_alive()
            cpu_before = server.cpu_seconds()
            try:
                result = await _run_round(
                    session,
                    system=system,
                    label=label,
                    server_port=server.port,
                    target_port=target.port,
                    messages=messages,
                    concurrency=args.concurrency,
                    body_bytes=args.body_bytes,
                    timeout_s=args.round_timeout,
                )
            except BenchError as exc:
                for child in children:
                    child.check_alive()  # a crash explains more than the symptom
                raise BenchError(f"{exc}\n{server.name} output:\n{server.log_tail()}") from None
            cpu_after = server.cpu_seconds()
            if cpu_before is not None and cpu_after is not None:
                result.server_cpu_us_per_msg = (cpu_after - cpu_before) / messages * 1e6
            say(
                f"  {system:8} {label:8} {result.msgs_per_s:8.0f} msg/s "
                f"({result.seconds:.2f} s; all publishes answered after "
                f"{result.publish_seconds:.2f} s"
                + (
                    f"; server CPU {result.server_cpu_us_per_msg:.0f} us/msg)"
                    if result.server_cpu_us_per_msg is not None
                    else ")"
                )
            )
            return result

        if args.warmup > 0:
            say("warm-up")
            for system, server in systems:
                report.warmup.append(await one(system, server, "warm-up", args.warmup))
        for n in range(1, args.rounds + 1):
            say(f"round {n}/{args.rounds}")
            for system, server in systems:
                result = await one(system, server, f"round {n}", args.messages)
                (report.raw if system == "raw" else report.emulator).append(result)
    return report


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=(
            "Publish->delivered msgs/s through the QStash emulator's standalone server, "
            "as a ratio of a raw aiohttp relay doing the same two HTTP hops in the same run."
        )
    )
    p.add_argument("--messages", type=int, default=3000, help="messages per round (3000)")
    p.add_argument("--rounds", type=int, default=3, help="measured rounds per system (3)")
    p.add_argument(
        "--warmup", type=int, default=500, help="warm-up messages per system, 0 = none (500)"
    )
    p.add_argument("--concurrency", type=int, default=64, help="publishes in flight (64)")
    p.add_argument("--body-bytes", type=int, default=128, help="approx. body size (128)")
    p.add_argument(
        "--round-timeout", type=float, default=120.0, help="fail a round after this (120 s)"
    )
    p.add_argument(
        "--emulator-cmd",
        default=DEFAULT_EMULATOR_CMD,
        help=f"command starting the emulator; {{python}} and {{port}} are substituted "
        f"(default: {DEFAULT_EMULATOR_CMD!r})",
    )
    p.add_argument(
        "--emulator-port",
        type=int,
        help="use an emulator already listening on 127.0.0.1:PORT instead of starting one "
        "(e.g. one running under a profiler)",
    )
    p.add_argument("--anchor-only", action="store_true", help="only measure the raw relay")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.add_argument("--check", action="store_true", help=f"exit 1 if ratio < {AIM}")
    p.add_argument("--quiet", action="store_true", help="no per-round progress on stderr")
    p.add_argument("--serve", choices=("target", "relay"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve is None:
        for name in ("messages", "rounds", "concurrency"):
            if getattr(args, name) < 1:
                p.error(f"--{name} must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.serve is not None:
        asyncio.run(_serve(args.serve))
        return 0
    try:
        report = asyncio.run(_bench(args))
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; child processes stopped", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(report.to_text())
    ratio = report.ratio
    if args.check and ratio is not None and ratio < AIM:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
