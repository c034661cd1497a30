"""An emulator started for tests, with what the plugin keeps beside it.

That is, signature verdicts and the request/delivery log. One is shared by a session
(reset per test); a test may get its own.
"""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from qstash_emulator import Emulator
from qstash_emulator.controls.captures import PREFIX, CaptureStore
from qstash_emulator.core.state import Delivered
from qstash_emulator.devserver.request_log import strip_tokens

from .config import Settings
from .records import Verdict, check_signature, iso

__all__ = ["Server"]


class Server:
    """A started emulator (in its own thread) plus the plugin's per-test bookkeeping."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        emu = Emulator(
            clock="real" if settings.real_time else "virtual",
            seed=settings.seed,
            quota=settings.quota,
        )
        for spec in settings.users:
            emu.users.add(spec.name, token=spec.token, quota=spec.quota)
        self.emulator = emu
        self.quota = settings.quota  # the tier the users have now
        self._own_quota = {spec.name for spec in settings.users if spec.quota}
        # Signature verdicts, checked when the answer arrives, as the destination would have:
        # id(record) -> (record, verdict); the record is kept to make the id unambiguous.
        self.verdicts: dict[int, tuple[Delivered, Verdict]] = {}
        self.log_enabled = settings.log
        self.started = emu.clock.now()  # the clock when the current test began
        self._due: int | None = None  # seed of a reset not run yet (see prepare)
        self._lock = threading.Lock()
        self.log_lines: list[str] = []
        self._log_lock = threading.Lock()
        emu.add_delivery_listener(self._delivered)
        emu.add_reset_hook(self._forget)
        # Outermost: runs a test's due reset before anything else, logs final statuses.
        emu.add_middleware(self._make_middleware())
        emu.start()
        # What the default user's env is after every reset (keys back to their first values),
        # known without waiting for the reset.
        self.default_env = emu.env()

    @property
    def captures(self) -> CaptureStore:
        """The emulator's capture store."""
        return self.emulator.captures

    def stop(self) -> None:
        """Stop the emulator and its thread."""
        self.emulator.stop()

    # -- per test -----------------------------------------------------------------------------
    def prepare(self, settings: Settings) -> None:
        """Fresh state for a test.

        Waking the emulator's thread costs more than the reset itself, so in the common case
        the reset is only marked as due: it runs on the loop at the test's first contact,
        either the first request to the server (the middleware runs it first) or the first
        call from the test's thread (`ready()`).
        """
        emu = self.emulator
        emu.auto_advance = settings.auto_advance
        self.log_enabled = settings.log
        needs_config = self._needs_config(settings)
        # Work still running must be cancelled now; a real clock runs timers on its own.
        if needs_config or emu.scheduler.busy or not emu.clock.virtual:
            self._take_due()
            emu.reset(settings.seed)
            if needs_config:
                emu.call_soon(self._configure, settings)
            self.started = emu.clock.now()
        else:
            with self._lock:
                self._due = settings.seed

    def _needs_config(self, settings: Settings) -> bool:
        return bool(
            settings.quota != self.quota
            or settings.rate_limits
            or settings.llm_scripts
            or self.emulator.llm.seed != settings.seed
        )

    def _take_due(self) -> int | None:
        # Exactly one of the loop (middleware) and the test's thread (ready) runs a due reset.
        with self._lock:
            due, self._due = self._due, None
        return due

    def _reset_in_loop(self, seed: int) -> asyncio.Task[None] | None:
        emu = self.emulator
        if emu.reset_if_idle(seed):
            self.started = emu.clock.now()
            return None
        # Work started since the test's thread looked (rare): reset once it is cancelled.
        return asyncio.get_running_loop().create_task(self._areset(seed))

    async def _areset(self, seed: int) -> None:
        await self.emulator.areset(seed)
        self.started = self.emulator.clock.now()

    async def _reset_due_in_loop(self) -> None:
        due = self._take_due()
        if due is not None:
            task = self._reset_in_loop(due)
            if task is not None:
                await task

    def ready(self) -> None:
        """Run a due reset now (the test's thread calls this before reading state)."""
        if self._due is None:
            return
        due = self._take_due()
        if due is not None:
            task = self.emulator.call_soon(self._reset_in_loop, due)
            if task is not None:
                self.emulator.call(_wait(task))

    @property
    def reset_done(self) -> bool:
        """False while the test's reset is still due (nothing of the test reached the server)."""
        return self._due is None

    def _configure(self, settings: Settings) -> None:
        emu = self.emulator
        if settings.quota != self.quota:
            emu.set_quota(settings.quota, keep=self._own_quota)
            self.quota = settings.quota
        for who, values in settings.rate_limits.items():
            emu.limits.configure(who, **values)
        emu.llm.seed = settings.seed
        for path in settings.llm_scripts:
            emu.llm.load_script(path)

    def _forget(self) -> None:
        self.verdicts.clear()
        with self._log_lock:
            self.log_lines.clear()

    # -- signatures -----------------------------------------------------------------------------
    def _delivered(self, record: Delivered) -> None:
        verdict = check_signature(record)
        self.verdicts[id(record)] = (record, verdict)
        if self.log_enabled:
            response = record.response
            answer = "in flight" if response is None else (response.error or str(response.status))
            kind = "" if record.message.kind == "message" else f" [{record.message.kind}]"
            self._log(
                record.time,
                f"deliver {record.message.id}{kind} {record.method} {record.url} "
                f"retried={record.retried} -> {answer}"
                + ("" if verdict.claims is not None else f"  (signature: {verdict.error})"),
            )

    def verdict(self, record: Delivered) -> Verdict:
        """The verdict taken on arrival, or one taken now (still in flight)."""
        found = self.verdicts.get(id(record))
        if found is not None and found[0] is record:
            return found[1]
        return check_signature(record)

    # -- log ------------------------------------------------------------------------------------
    def _log(self, t: float, text: str) -> None:
        with self._log_lock:
            self.log_lines.append(f"[{iso(t)}] {text}")

    def log_text(self) -> str:
        """The request and delivery log of the current test, one line each."""
        with self._log_lock:
            return "\n".join(self.log_lines)

    def _make_middleware(self) -> Middleware:
        clock = self.emulator.clock

        @web.middleware
        async def reset_and_log(request: web.Request, handler: Handler) -> web.StreamResponse:
            if self._due is not None:
                await self._reset_due_in_loop()  # the test's first contact: reset first
            if not self.log_enabled or request.path.startswith(PREFIX):
                return await handler(request)
            t = clock.now()
            path = strip_tokens(request.path_qs)  # a token in the query is not for the log
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                self._log(t, f"{request.method} {path} -> {exc.status}")
                raise
            except Exception as exc:
                self._log(t, f"{request.method} {path} -> error {exc!r}")
                raise
            self._log(t, f"{request.method} {path} -> {response.status}")
            return response

        return reset_and_log


async def _wait(task: asyncio.Task[None]) -> None:
    await task
