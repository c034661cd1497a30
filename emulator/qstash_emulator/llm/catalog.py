"""The models the engine lists and the facts it knows about them."""

from __future__ import annotations

from typing import Any

__all__ = [
    "CONTEXT_LENGTH",
    "LLAMA_3_8B",
    "MISTRAL_7B",
    "OTHER_MODELS",
    "UPSTASH_MODELS",
    "UPSTASH_PROVIDER",
    "model_entry",
    "models_list",
]

UPSTASH_PROVIDER = "upstash"

LLAMA_3_8B = "meta-llama/Meta-Llama-3-8B-Instruct"
MISTRAL_7B = "mistralai/Mistral-7B-Instruct-v0.2"

# id -> (created, owned_by). "created" is the model's release date, fixed so lists are stable.
UPSTASH_MODELS: dict[str, tuple[int, str]] = {
    LLAMA_3_8B: (1713398400, "upstash"),
    MISTRAL_7B: (1702252800, "upstash"),
}

# The OpenAI-compatible endpoints other than chat serve any model name; these are listed so
# that a client enumerating models finds something for each endpoint.
OTHER_MODELS: dict[str, tuple[int, str]] = {
    "text-embedding-3-small": (1705948997, "system"),
    "text-embedding-3-large": (1705953180, "system"),
    "text-embedding-ada-002": (1671217299, "openai-internal"),
    "whisper-1": (1677532384, "openai-internal"),
    "dall-e-2": (1698798177, "system"),
    "dall-e-3": (1698785189, "system"),
}

# vLLM's max_model_len for the Upstash-hosted models.
CONTEXT_LENGTH: dict[str, int] = {LLAMA_3_8B: 8192, MISTRAL_7B: 32768}


def model_entry(model_id: str, created: int, owned_by: str) -> dict[str, Any]:
    """One model as GET /v1/models lists it."""
    return {"id": model_id, "object": "model", "created": created, "owned_by": owned_by}


def models_list(models: dict[str, tuple[int, str]]) -> dict[str, Any]:
    """GET /v1/models's answer for `models` (id -> (created, owner))."""
    return {
        "object": "list",
        "data": [model_entry(m, created, owner) for m, (created, owner) in models.items()],
    }
