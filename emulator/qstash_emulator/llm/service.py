"""The LLM side of the emulator, shared by its three faces: the chat and OpenAI-compatible HTTP
endpoints, the `/queue` mirror and LLM publishing (`api/llm` and provider URLs).

`LLMService.of(engine)` holds the scripted engine (`llm`), the provider hosts it answers for,
the worker queue and the chat rate limits; everything waits on the emulator's clock.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..controls.limits import Limits
from ..core.engine import Engine
from . import LLMEngine, LLMOutcome
from . import rules as r
from .errors import OpenAIError
from .tokens import count_message_tokens

# Path tails (after /v1, /v2, /llm/v1, /queue or a provider's base) -> the engine's endpoint.
POST_ENDPOINTS: dict[str, str] = {
    "chat/completions": r.CHAT,
    "completions": r.COMPLETION,
    "embeddings": r.EMBEDDINGS,
    "audio/transcriptions": r.TRANSCRIPTION,
    "audio/translations": r.TRANSLATION,
    "images/generations": r.IMAGE,
    "images/edits": r.IMAGE_EDIT,
}
MODELS = "models"
# Endpoints whose request is a multipart form with file uploads.
FORM_ENDPOINTS = (r.TRANSCRIPTION, r.TRANSLATION, r.IMAGE_EDIT)
# Where generated images are served (unauthenticated, as image URLs are fetched by browsers).
IMAGE_ROUTE_PREFIX = "/__llm"
YEAR = 366 * 86400.0

Files = dict[str, tuple[bytes, str | None]]  # form field -> (content, filename)


@dataclass
class LLMRequest:
    """One decoded request for the engine, whichever face it came through."""

    endpoint: str  # a value of POST_ENDPOINTS, or MODELS
    body: Any = None  # the JSON body, or the form fields of a multipart request
    files: Files = field(default_factory=dict)
    provider: str = "custom"
    image_base: str = ""  # `{origin}/__llm`: image URLs point there
    model_id: str | None = None  # GET models/{id}


def endpoint_for_tail(tail: str) -> str | None:
    """The engine endpoint a path ends with ("/v1/chat/completions" -> "chat")."""
    path = tail.split("?", 1)[0].rstrip("/")
    # Longest first: "chat/completions" before "completions".
    for suffix in sorted(POST_ENDPOINTS, key=len, reverse=True):
        if path == suffix or path.endswith("/" + suffix):
            return POST_ENDPOINTS[suffix]
    return None


def form_fields(fields: Mapping[str, list[str]]) -> dict[str, str | list[str]]:
    """Multipart fields as the engine takes them: repeated or `name[]` fields stay lists."""
    return {k: (v if k.endswith("[]") or len(v) > 1 else v[0]) for k, v in fields.items()}


def chat_tokens(body: Any) -> int:
    """Tokens a chat request counts toward the chat token limit: the prompt plus the largest
    completion it asked for (what OpenAI-style limiters reserve before answering)."""
    if not isinstance(body, Mapping):
        return 0
    messages = body.get("messages")
    try:
        prompt = count_message_tokens(
            [m for m in messages if isinstance(m, Mapping)] if isinstance(messages, list) else []
        )
    except (AttributeError, TypeError):
        prompt = 0
    most = body.get("max_completion_tokens") or body.get("max_tokens")
    return prompt + (most if isinstance(most, int) and not isinstance(most, bool) else 0)


def run_request(llm: LLMEngine, req: LLMRequest, now: float) -> LLMOutcome:
    """Answer a decoded request with the scripted engine (synchronous; records the call)."""
    ep = req.endpoint
    if ep == MODELS:
        if req.model_id is not None:
            return llm.model(req.model_id, now=now)
        return llm.models(now=now)
    if ep == r.CHAT:
        return llm.chat(req.body, now=now, provider=req.provider)
    if ep == r.COMPLETION:
        return llm.completion(req.body, now=now, provider=req.provider)
    if ep == r.EMBEDDINGS:
        return llm.embeddings(req.body, now=now)
    if ep in (r.TRANSCRIPTION, r.TRANSLATION):
        file, filename = req.files.get("file", (None, None))
        fields = req.body if isinstance(req.body, Mapping) else {}
        return llm.transcription(
            fields, file, now=now, translate=ep == r.TRANSLATION, filename=filename
        )
    if ep == r.IMAGE:
        return llm.image(req.body, now=now, base_url=req.image_base)
    if ep == r.IMAGE_EDIT:
        image = req.files.get("image") or req.files.get("image[]")
        mask = req.files.get("mask")
        return llm.image(
            req.body if isinstance(req.body, Mapping) else {},
            now=now,
            edit=True,
            image=image[0] if image else None,
            mask=mask[0] if mask else None,
            base_url=req.image_base,
        )
    raise ValueError(f"unknown LLM endpoint {ep!r}")


def error_outcome(exc: OpenAIError, headers: Mapping[str, str] | None = None) -> LLMOutcome:
    return LLMOutcome(exc.status, exc.body(), dict(headers or {}))


def sse_events(chunks: list[dict[str, Any]]) -> list[bytes]:
    """A stream as server-sent events: one `data:` event per chunk, then `data: [DONE]`."""
    events = [b"data: " + json.dumps(c, separators=(",", ":")).encode() + b"\n\n" for c in chunks]
    events.append(b"data: [DONE]\n\n")
    return events


def encode_outcome(outcome: LLMOutcome) -> tuple[bytes, str]:
    """(body bytes, content type) of an answer: SSE for a stream, raw text, or JSON."""
    if outcome.chunks is not None:
        return b"".join(sse_events(outcome.chunks)), "text/event-stream"
    if outcome.raw is not None:
        return outcome.raw.encode(), outcome.content_type
    return json.dumps(outcome.body, separators=(",", ":")).encode(), "application/json"


class LLMService:
    """The scripted LLM engine plus what its faces share: clock waits, limits, queue, hosts."""

    def __init__(self, engine: Engine) -> None:
        from .jobs import LLMQueue
        from .publishing import LLMGateway, LLMProviders

        self.engine = engine
        self.clock = engine.clock
        self.scheduler = engine.scheduler
        self.llm = LLMEngine(seed=engine.ids.seed)
        self.providers = LLMProviders()
        self.queue = LLMQueue(self)
        self.gateway = LLMGateway(self)
        self.limits: Limits | None = None  # the emulator's chat limits, when it has them
        self.auto_advance: Callable[[], bool] = lambda: False
        self.public_url: Callable[[], str] = lambda: ""  # for image URLs made in deliveries
        self._waiters: set[asyncio.Future[None]] = set()
        engine.resetters.append(self.reset)
        from ..resources.destinations import add_resolver

        add_resolver(engine, self.gateway.resolve)

    @classmethod
    def of(cls, engine: Engine) -> LLMService:
        found = _BY_ENGINE.get(engine)
        if found is None:
            found = _BY_ENGINE[engine] = cls(engine)
        return found

    def now(self) -> float:
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
        """Await `fut`; on a virtual clock with auto-advance, idle time is skipped meanwhile
        (otherwise the test moves the clock)."""
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


_BY_ENGINE: weakref.WeakKeyDictionary[Engine, LLMService] = weakref.WeakKeyDictionary()
