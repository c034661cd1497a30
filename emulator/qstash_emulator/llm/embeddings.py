"""Deterministic embeddings: unit vectors built by feature hashing the input.

A vector is the normalized sum of pseudo-random vectors, one per lowercased word (weight 1),
per word bigram (0.5) and for the whole input (0.25), each drawn from SHAKE-256 of
(model, feature). The same input always gives the same vector; inputs sharing words have a
positive cosine similarity, which keeps retrieval code under test meaningful; word order and
exact spelling still make vectors differ. Values are rounded to float32 so the `float` and
`base64` encodings carry the same numbers.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import math
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .errors import OpenAIError
from .tokens import count_tokens
from .validation import Fields, require_model, type_error

__all__ = ["EmbeddingsRequest", "render_embeddings", "validate_embeddings"]

_MAX_INPUTS = 2048
_WORD = re.compile(r"\w+")


@lru_cache(maxsize=4096)
def _feature(model: str, feature: str, dim: int) -> tuple[float, ...]:
    raw = hashlib.shake_256(f"{model}\x00{feature}".encode()).digest(dim * 2)
    return tuple(v / 32768.0 for v in struct.unpack(f"<{dim}h", raw))


def _embed(text: str, model: str, dim: int) -> list[float]:
    words = [w.lower() for w in _WORD.findall(text)]
    weighted = [(f"w:{w}", 1.0) for w in words]
    weighted += [(f"b:{a} {b}", 0.5) for a, b in itertools.pairwise(words)]
    weighted.append((f"t:{text}", 0.25))
    total = [0.0] * dim
    for feature, weight in weighted:
        for i, v in enumerate(_feature(model, feature, dim)):
            total[i] += weight * v
    norm = math.sqrt(sum(v * v for v in total)) or 1.0
    unit = [v / norm for v in total]
    # Round-trip through float32 so both encodings agree exactly.
    return list(struct.unpack(f"<{dim}f", struct.pack(f"<{dim}f", *unit)))


def _encode_base64(vector: list[float]) -> str:
    """OpenAI's `encoding_format: base64`: little-endian float32 bytes, base64-encoded."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def _inputs(value: Any) -> list[str]:
    invalid = OpenAIError(
        "'$.input' is invalid. Please check the API reference: "
        "https://platform.openai.com/docs/api-reference.",
        param="input",
        code="invalid_value",
    )
    if value is None:
        raise OpenAIError(
            "Missing required parameter: 'input'.", param="input", code="missing_required_parameter"
        )
    if isinstance(value, str):
        items: list[str] = [value]
    elif isinstance(value, list) and value:
        if all(isinstance(v, str) for v in value):
            items = list(value)
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            items = [" ".join(str(v) for v in value)]  # one input given as token ids
        elif all(isinstance(v, list) and v and all(isinstance(t, int) for t in v) for v in value):
            items = [" ".join(str(t) for t in v) for v in value]
        else:
            raise type_error("input", "a string or an array of strings or tokens", value)
    else:
        raise invalid
    if len(items) > _MAX_INPUTS:
        raise OpenAIError(
            f"Invalid 'input': array too long. Expected an array with maximum length "
            f"{_MAX_INPUTS}, "
            f"but got an array with length {len(items)} instead.",
            param="input",
            code="array_above_max_length",
        )
    if any(not item for item in items):
        raise invalid
    return items


@dataclass(frozen=True)
class EmbeddingsRequest:
    """A validated embeddings request."""

    model: str
    inputs: list[str]
    encoding_format: str  # "float" or "base64"
    dimensions: int | None


def validate_embeddings(body: Any) -> EmbeddingsRequest:
    """Check an embeddings request body as OpenAI does.

    Raises:
        OpenAIError: 400 in OpenAI's words for a missing or invalid field.
    """
    if not isinstance(body, Mapping):
        raise OpenAIError("The request body must be a JSON object.", code="invalid_type")
    model = require_model(body)
    items = _inputs(body.get("input"))
    fields = Fields(body)
    encoding = fields.choice("encoding_format", ["float", "base64"], default="float")
    dim = fields.integer("dimensions", lo=1, hi=65536)
    if dim is not None and model == "text-embedding-ada-002":
        raise OpenAIError("This model does not support specifying dimensions.", param="dimensions")
    return EmbeddingsRequest(model, items, encoding, dim)


def render_embeddings(req: EmbeddingsRequest, default_dim: int) -> dict[str, Any]:
    """The embeddings `list` response; `dimensions` overrides the engine's default size."""
    size = req.dimensions or default_dim
    data = []
    for index, item in enumerate(req.inputs):
        vector = _embed(item, req.model, size)
        embedding: list[float] | str = (
            _encode_base64(vector) if req.encoding_format == "base64" else vector
        )
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(count_tokens(item) for item in req.inputs)
    return {
        "object": "list",
        "data": data,
        "model": req.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
