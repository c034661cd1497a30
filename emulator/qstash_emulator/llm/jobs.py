"""The `/queue` mirror's worker queue, on the emulator's clock.

A bounded FIFO served by a fixed number of workers, at an optional start rate. A job's
request is answered by the scripted engine when a worker picks it up (so rules are
consumed in queue order); the job finishes `latency` clock seconds later, which frees its
worker for the next job. Callers either wait for the answer (the standard OpenAI-compatible
behaviour) or submit and poll (see http/openai_queue.py). Transport-free: dispatch and finish
are scheduler entries, so a virtual clock runs the queue deterministically.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.clock import ms
from ..core.scheduler import Timer
from . import LLMOutcome
from .errors import OpenAIError

if TYPE_CHECKING:
    import asyncio

    from .requests import LLMRequest
    from .service import LLMService

__all__ = ["CANCELLED", "COMPLETED", "FAILED", "JOB", "Job", "LLMQueue", "QueueConfig"]

JOB = "llm_job"  # the store's kind for a job (key: job id), see llm/persist.py

_QUEUED = "queued"
_IN_PROGRESS = "in_progress"
COMPLETED = "completed"  # the engine answered 2xx
FAILED = "failed"  # the engine answered an error (the result holds it)
CANCELLED = "cancelled"
_FINISHED = frozenset({COMPLETED, FAILED, CANCELLED})
_KEEP_FINISHED = 10_000  # finished jobs kept for polling; the oldest go first


@dataclass
class QueueConfig:
    """The worker queue's settings (see `LLMQueue.configure`)."""

    concurrency: int = 4  # jobs answered at the same time
    rate: int | None = None  # jobs started per `period` seconds (None: no limit)
    period: float = 1.0
    max_size: int = 1000  # jobs waiting for a worker; a full queue answers 429


@dataclass
class Job:
    """One queued request: its status, and its outcome once answered (times in clock seconds)."""

    id: str
    user: str
    path: str  # the queue path it was submitted to, e.g. /queue/chat/completions
    run: Callable[[float], LLMOutcome]
    created_at: float
    serial: int
    status: str = _QUEUED
    started_at: float | None = None
    completed_at: float | None = None
    outcome: LLMOutcome | None = None
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    # The decoded request `run` answers: what a persistent store saves to rebuild `run`.
    request: LLMRequest | None = None

    @property
    def finished(self) -> bool:
        """True once the job completed, failed or was cancelled."""
        return self.status in _FINISHED


class LLMQueue:
    """The `/queue` worker queue of one emulator (see the module docstring).

    Args:
        service: The LLM service whose engine answers jobs and whose clock runs them.
    """

    def __init__(self, service: LLMService) -> None:
        self.service = service
        self.config = QueueConfig()
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self._waiting: deque[Job] = deque()
        self._running = 0
        self._window_start = -math.inf
        self._started_in_window = 0
        self._wakeup: Timer | None = (
            None  # the timer that dispatches when the rate window rolls over
        )
        self._serial = 0

    def configure(
        self,
        *,
        concurrency: int | None = None,
        rate: int | None = None,
        period: float | None = None,
        max_size: int | None = None,
    ) -> QueueConfig:
        """Set the worker count, start rate and how many jobs may wait.

        Unset arguments keep their value.

        Args:
            concurrency: Jobs answered at the same time (at least 1).
            rate: Jobs started per `period` seconds; 0 lifts the limit.
            period: The rate's window, in seconds.
            max_size: Jobs that may wait for a worker; past it a submit gets 429.

        Raises:
            ValueError: For a value out of range.
        """
        if concurrency is not None:
            if concurrency < 1:
                raise ValueError("concurrency must be >= 1")
            self.config.concurrency = concurrency
        if rate is not None:
            if rate < 0:
                raise ValueError("rate must be >= 0 (0 lifts the limit)")
            self.config.rate = rate or None
        if period is not None:
            if period <= 0:
                raise ValueError("period must be > 0")
            self.config.period = float(period)
        if max_size is not None:
            if max_size < 0:
                raise ValueError("max_size must be >= 0")
            self.config.max_size = max_size
        self._dispatch()
        return self.config

    def reset(self) -> None:
        """Drop every job and go back to the default settings; waiting callers are released."""
        for job in self.jobs.values():
            self._release(job)
        self.jobs.clear()
        self._waiting.clear()
        self._running = 0
        self._window_start, self._started_in_window = -math.inf, 0
        if self._wakeup is not None:
            self._wakeup.cancel()
            self._wakeup = None
        self.config = QueueConfig()
        self._serial = 0

    # -- jobs -------------------------------------------------------------------------------
    def submit(
        self,
        user: str,
        path: str,
        run: Callable[[float], LLMOutcome],
        request: LLMRequest | None = None,
    ) -> Job:
        """Queue a request (FIFO); it starts at once when a worker is free.

        `request` is the decoded request `run` answers; given, a persistent store keeps the job.
        """
        if len(self._waiting) >= self.config.max_size:
            raise OpenAIError(
                f"The queue is full: {len(self._waiting)} requests are waiting for a worker. "
                "Retry later.",
                status=429,
                type="requests",
                code="queue_full",
            )
        self._serial += 1
        job = Job(
            id=self.service.engine.ids.next("llm_job", "job_", 24),
            user=user,
            path=path,
            run=run,
            created_at=self.service.now(),
            serial=self._serial,
            request=request,
        )
        self.jobs[job.id] = job
        self._saved(job)
        self._forget_old()
        self._waiting.append(job)
        self._dispatch()
        return job

    def _saved(self, job: Job) -> None:
        if job.request is not None:  # a job without its request could not be rebuilt
            self.service.engine.store.put(JOB, job.user, job.id, job)

    def restore(self, job: Job) -> None:
        """Put back a saved job (startup, llm/persist.py), oldest first.

        A finished job is kept for polling; an unfinished one waits for a worker again (one
        that was in progress is answered again, as an interrupted request would be).
        """
        self.jobs[job.id] = job
        self._serial = max(self._serial, job.serial)
        if job.finished:
            return
        job.status, job.started_at, job.outcome = _QUEUED, None, None
        # Saved rows come back in the order of their last change: keep the queue by serial.
        at = len(self._waiting)
        while at and self._waiting[at - 1].serial > job.serial:
            at -= 1
        self._waiting.insert(at, job)
        if len(self._waiting) == 1:

            async def resume() -> None:
                # Dispatched from the loop, not while restoring: LLM scripts of a config
                # file are applied after the restore.
                self._dispatch()

            self.service.scheduler.call_at(self.service.now(), resume, (0,))

    def get(self, user: str, job_id: str) -> Job:
        """The user's job `job_id`.

        Raises:
            OpenAIError: 404 for an unknown job (or another user's).
        """
        job = self.jobs.get(job_id)
        if job is None or job.user != user:
            raise OpenAIError(
                f"No job found with id '{job_id}'.", status=404, param="id", code="job_not_found"
            )
        return job

    def list(self, user: str) -> list[Job]:
        """The user's jobs, oldest first."""
        # By serial: jobs restored after a restart come back in the order of their last change.
        return sorted((job for job in self.jobs.values() if job.user == user), key=_serial)

    def cancel(self, user: str, job_id: str) -> Job:
        """Cancel a job still waiting for a worker (one already answered cannot be)."""
        job = self.get(user, job_id)
        if job.status != _QUEUED:
            raise OpenAIError(
                f"Job '{job_id}' is {job.status} and can no longer be cancelled.",
                status=409,
                param="id",
                code="job_not_cancellable",
            )
        self._waiting.remove(job)
        job.status = CANCELLED
        job.completed_at = self.service.now()
        self._saved(job)
        self._release(job)
        return job

    def position(self, job: Job) -> int | None:
        """How many jobs are ahead of a waiting job (0: next), None once it has started."""
        if job.status != _QUEUED:
            return None
        return self._waiting.index(job)

    async def wait(self, job: Job) -> None:
        """Until the job has finished (or the emulator was reset)."""
        if job.finished:
            return
        fut = self.service.future()
        job.waiters.append(fut)
        await self.service.wait(fut)

    def json(self, job: Job) -> dict[str, Any]:
        """A job as `GET /queue/jobs/{id}` shows it."""
        out: dict[str, Any] = {
            "id": job.id,
            "object": "queue.job",
            "status": job.status,
            "path": job.path,
            "created_at": _seconds(job.created_at),
            "started_at": _seconds(job.started_at),
            "completed_at": _seconds(job.completed_at),
            "position": self.position(job),
            "result": None,
        }
        if job.outcome is not None and job.status in (COMPLETED, FAILED):
            out["result"] = {
                "status": job.outcome.status,
                "headers": dict(job.outcome.headers),
                "body": job.outcome.body,
            }
        return out

    # -- workers ----------------------------------------------------------------------------
    def _rate_allows(self, now: float) -> bool:
        rate = self.config.rate
        if rate is None:
            return True
        period = self.config.period
        start = math.floor(now / period) * period
        if start != self._window_start:
            self._window_start, self._started_in_window = start, 0
        return self._started_in_window < rate

    def _dispatch(self) -> None:
        while self._waiting and self._running < self.config.concurrency:
            now = self.service.now()
            if not self._rate_allows(now):
                self._wake_at(self._window_start + self.config.period)
                return
            job = self._waiting.popleft()
            self._started_in_window += 1
            self._start(job, now)

    def _wake_at(self, due: float) -> None:
        if self._wakeup is not None and not self._wakeup.cancelled and self._wakeup.due <= due:
            return

        async def wake() -> None:
            self._wakeup = None
            self._dispatch()

        if self._wakeup is not None:
            self._wakeup.cancel()
        self._wakeup = self.service.scheduler.call_at(due, wake, (0,))

    def _start(self, job: Job, now: float) -> None:
        job.status = _IN_PROGRESS
        job.started_at = now
        self._running += 1
        try:
            outcome = job.run(now)
        except OpenAIError as exc:
            outcome = LLMOutcome(exc.status, exc.body())
        job.outcome = outcome
        self._saved(job)

        async def finish() -> None:
            if job.finished:  # the queue was reset meanwhile
                return
            job.status = COMPLETED if outcome.ok else FAILED
            job.completed_at = self.service.now()
            self._saved(job)
            self._running -= 1
            self._release(job)
            self._dispatch()

        self.service.scheduler.call_at(now + max(0.0, outcome.latency), finish, (1, job.serial))

    def _release(self, job: Job) -> None:
        if job.status not in _FINISHED:
            job.status = CANCELLED
        for waiter in job.waiters:
            if not waiter.done():
                waiter.set_result(None)
        job.waiters.clear()

    def _forget_old(self) -> None:
        while len(self.jobs) > _KEEP_FINISHED:
            oldest = next((j for j in self.jobs.values() if j.finished), None)
            if oldest is None:
                return
            del self.jobs[oldest.id]
            self.service.engine.store.delete(JOB, oldest.user, oldest.id)


def _serial(job: Job) -> int:
    return job.serial


def _seconds(t: float | None) -> int | None:
    return None if t is None else ms(t) // 1000
