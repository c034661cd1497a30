"""The LLM side of the emulator, shared by its three faces.

Those are the chat and OpenAI-compatible HTTP endpoints, the `/queue` mirror and LLM
publishing (`api/llm` and provider URLs). `LLMService` (one per backend) holds the scripted
engine (`llm`), the provider hosts it answers for, the worker queue and the chat rate
limits; everything waits on the emulator's clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..controls.limits import Limits
from ..core.engine import Engine
from . import LLMEngine
from .jobs import LLMQueue
from .publishing import LLMGateway, LLMProviders
from .requests import YEAR, chat_tokens

__all__ = ["LLMService"]


class LLMService:
    """The scripted LLM engine plus what its faces share: clock waits, limits, queue, hosts."""

    def __init__(self, engine: Engine, limits: Limits | None = None) -> None:
        self.engine = engine
        self.clock = engine.clock
        self.scheduler = engine.scheduler
        self.llm = LLMEngine(seed=engine.ids.seed)
        self.providers = LLMProviders()
        self.queue = LLMQueue(self)
        self.gateway = LLMGateway(self)
        self.limits = limits  # the emulator's chat limits, when it has them
        self.auto_advance: Callable[[], bool] = lambda: False
        self.public_url: Callable[[], str] = lambda: ""  # for image URLs made in deliveries
        self._waiters: set[asyncio.Future[None]] = set()

    def now(self) -> float:
        """The emulator's clock, in seconds since the Unix epoch."""
        return self.clock.now()

    def reset(self) -> None:
        """Forget rules, calls, images, jobs and provider settings; release waiting requests."""
        self.llm.reset()
        self.llm.seed = self.engine.ids.seed
        self.providers.reset()
        self.queue.reset()
        for waiter in list(self._waiters):
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    def check_chat_limit(self, user: str, body: Any) -> dict[str, str] | None:
        """None when a chat request may go ahead; else the 429's x-ratelimit-* headers."""
        if self.limits is None:
            return None
        return self.limits.check_chat(user, chat_tokens(body))

    # -- waiting on the emulator's clock ---------------------------------------------------------
    def future(self) -> asyncio.Future[None]:
        """A future a clock event resolves; a reset resolves it too (nothing waits forever)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(fut)
        fut.add_done_callback(self._waiters.discard)
        return fut

    async def wait(self, fut: asyncio.Future[None]) -> None:
        """Await `fut`; on a virtual clock with auto-advance, idle time is skipped meanwhile.

        Otherwise the test moves the clock.
        """
        if not fut.done() and self.clock.virtual and self.auto_advance():
            await self.scheduler.run_until(fut.done, YEAR)
        await fut

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` on the emulator's clock (a scheduler entry, never asyncio.sleep)."""
        if seconds <= 0:
            return
        fut = self.future()

        async def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        timer = self.scheduler.call_at(self.clock.now() + seconds, wake)
        try:
            await self.wait(fut)
        finally:
            timer.cancel()
