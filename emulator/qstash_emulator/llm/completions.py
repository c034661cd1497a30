"""Render the legacy `/v1/completions` endpoint (`text_completion` objects)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .logprobs import completion_logprobs
from .responder import default_text
from .rules import Answer
from .shaping import shape
from .streaming import TextStreamChoice, completion_chunks
from .tokenizers import for_request
from .tokens import split_tokens
from .validation import CompletionRequest

__all__ = ["render_completion"]


def render_completion(
    req: CompletionRequest,
    answers: Sequence[Answer | None],
    *,
    completion_id: str,
    created: int,
    engine_seed: int,
) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """One answer per prompt; each prompt gets `n` choices, indexed prompt-major (as OpenAI)."""
    choices: list[TextStreamChoice] = []
    bodies: list[dict[str, Any]] = []
    completion_tokens = 0
    for p, (prompt, answer) in enumerate(zip(req.prompts, answers, strict=True)):
        for i in range(req.n):
            index = p * req.n + i
            text = answer.content if answer is not None else None
            if text is None:
                greedy = req.sampling.greedy
                text = default_text(
                    engine_seed, req.model, prompt, req.sampling.key(), None if greedy else i
                )
            shaped = shape(
                text,
                stop=req.stop,
                max_tokens=req.max_tokens,
                tokenizer=for_request(req.model, req.provider),
            )
            finish = shaped.finish_reason
            if answer is not None and answer.finish_reason is not None:
                finish = answer.finish_reason
            completion_tokens += shaped.count
            key = [req.model, shaped.text]
            top = req.logprobs
            logprobs = None
            out_text, out_tokens = shaped.text, shaped.tokens
            if req.echo:
                out_text = prompt + shaped.text
                out_tokens = split_tokens(prompt) + shaped.tokens
            if top is not None:
                logprobs = completion_logprobs(out_tokens, top, key)
            bodies.append(
                {"text": out_text, "index": index, "logprobs": logprobs, "finish_reason": finish}
            )
            choices.append(
                TextStreamChoice(
                    index=index,
                    text=shaped.text,
                    tokens=shaped.tokens,
                    finish_reason=finish,
                    logprobs_top=top,
                    logprobs_key=key,
                    chunking=answer.chunks if answer is not None else None,
                )
            )
    usage = {
        "prompt_tokens": req.prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": req.prompt_tokens + completion_tokens,
    }
    base = {
        "id": completion_id,
        "object": "text_completion",
        "created": created,
        "model": req.model,
    }
    body = {**base, "choices": bodies, "usage": usage}
    chunks = completion_chunks(base, choices, usage, req.include_usage) if req.stream else None
    return body, chunks
