"""Requests to the scripted LLM engine, whichever face they come through.

The endpoint a path names, the decoded request, running it, and encoding the outcome. A
leaf module: the service, the HTTP handlers, the /queue jobs and LLM publishing all use it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import LLMEngine, LLMOutcome
from . import rules as r
from .errors import OpenAIError
from .tokens import count_message_tokens

__all__ = [
    "FORM_ENDPOINTS",
    "IMAGE_ROUTE_PREFIX",
    "MODELS",
    "POST_ENDPOINTS",
    "YEAR",
    "Files",
    "LLMRequest",
    "chat_tokens",
    "encode_outcome",
    "endpoint_for_tail",
    "error_outcome",
    "form_fields",
    "run_request",
    "sse_events",
]

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
    """Tokens a chat request counts toward the chat token limit.

    The prompt plus the largest completion it asked for (what OpenAI-style limiters reserve
    before answering).
    """
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
    """An `OpenAIError` as an engine outcome."""
    return LLMOutcome(exc.status, exc.body(), dict(headers or {}))


def sse_events(chunks: list[dict[str, Any]]) -> list[bytes]:
    """A stream as server-sent events: one `data:` event per chunk, then `data: [DONE]`."""
    events = [b"data: " + _compact(c) + b"\n\n" for c in chunks]
    events.append(b"data: [DONE]\n\n")
    return events


def encode_outcome(outcome: LLMOutcome) -> tuple[bytes, str]:
    """(body bytes, content type) of an answer: SSE for a stream, raw text, or JSON."""
    if outcome.chunks is not None:
        return b"".join(sse_events(outcome.chunks)), "text/event-stream"
    if outcome.raw is not None:
        return outcome.raw.encode(), outcome.content_type
    return _compact(outcome.body), "application/json"


def _compact(data: Any) -> bytes:
    # As the hosted models' server (and OpenAI) writes JSON: no spaces, UTF-8 as is.
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
