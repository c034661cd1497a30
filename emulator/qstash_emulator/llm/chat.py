"""Render a validated chat request and its answer (scripted or default) as OpenAI's response."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from .catalog import UPSTASH_PROVIDER
from .hashing import hex_id
from .logprobs import chat_token_logprobs
from .responder import default_json_object, default_text, schema_value
from .rules import Answer
from .shaping import shape
from .streaming import StreamChoice, chat_chunks
from .tokenizers import for_request
from .tokens import count_tokens
from .validation import ChatRequest

__all__ = ["ChatEnvelope", "render_chat"]


@dataclass(frozen=True)
class ChatEnvelope:
    """Per-call facts the engine supplies: the id, the timestamp and the engine seed."""

    completion_id: str
    created: int
    fingerprint: str
    engine_seed: int


def _default_key(req: ChatRequest, engine_seed: int, index: int) -> list[Any]:
    """What the default answer depends on; greedy decoding (temperature 0) ignores the index."""
    return [
        engine_seed,
        req.model,
        req.messages,
        req.response_format,
        req.sampling.key(),
        None if req.sampling.greedy else index,
    ]


def _default_answer(req: ChatRequest, engine_seed: int, index: int) -> Answer:
    key = _default_key(req, engine_seed, index)
    forced = req.forced_tool()
    if forced is not None:
        function = forced["function"]
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        arguments = schema_value(parameters, "tool", *key)
        call = {
            "id": None,
            "type": "function",
            "function": {"name": function["name"], "arguments": json.dumps(arguments)},
        }
        return Answer(tool_calls=(call,))
    if req.response_format == "json_object":
        return Answer(content=default_json_object(*key))
    if req.response_format == "json_schema" and req.json_schema is not None:
        return Answer(content=json.dumps(schema_value(req.json_schema, *key)))
    return Answer(content=default_text(*key))


def _tool_calls(answer: Answer, envelope: ChatEnvelope, index: int) -> list[dict[str, Any]] | None:
    if answer.tool_calls is None:
        return None
    calls = []
    for position, call in enumerate(answer.tool_calls):
        call_id = call.get("id") or "call_" + hex_id(
            envelope.completion_id, index, position, length=24
        )
        calls.append({"id": call_id, "type": "function", "function": dict(call["function"])})
    return calls


def _choice(
    req: ChatRequest, answer: Answer | None, envelope: ChatEnvelope, index: int
) -> StreamChoice:
    if answer is None:
        answer = _default_answer(req, envelope.engine_seed, index)
    elif answer.content is None and answer.tool_calls is None:
        # A rule that only sets latency/chunks/headers answers with the default text.
        default = _default_answer(req, envelope.engine_seed, index)
        answer = replace(answer, content=default.content, tool_calls=default.tool_calls)
    content, tokens, finish, stop_reason, count = None, [], "stop", None, 0
    if answer.content is not None:
        shaped = shape(
            answer.content,
            stop=req.stop,
            max_tokens=req.max_tokens,
            tokenizer=for_request(req.model, req.provider),
        )
        content, tokens, count = shaped.text, shaped.tokens, shaped.count
        finish, stop_reason = shaped.finish_reason, shaped.stop_reason
    calls = _tool_calls(answer, envelope, index)
    if calls and finish != "length":
        finish = "tool_calls"
    if answer.finish_reason is not None:
        finish = answer.finish_reason
    return StreamChoice(
        index=index,
        content=content,
        tokens=tokens,
        tool_calls=calls,
        finish_reason=finish,
        stop_reason=stop_reason,
        chunking=answer.chunks,
        logprobs_top=req.top_logprobs if req.logprobs else None,
        logprobs_key=[req.model, content],
        content_tokens=count,
    )


def _completion_tokens(choice: StreamChoice, req: ChatRequest) -> int:
    tokenizer = for_request(req.model, req.provider)
    count = tokenizer.count if tokenizer is not None else count_tokens
    tokens = choice.content_tokens if choice.content_tokens is not None else len(choice.tokens)
    for call in choice.tool_calls or ():
        tokens += count(call["function"]["name"]) + count(call["function"]["arguments"])
    return tokens


def _message(choice: StreamChoice) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": choice.content}
    if choice.tool_calls:
        message["tool_calls"] = choice.tool_calls
    return message


def _logprobs(choice: StreamChoice) -> dict[str, Any] | None:
    if choice.logprobs_top is None:
        return None
    content = chat_token_logprobs(choice.tokens, choice.logprobs_top, choice.logprobs_key)
    return {"content": content, "refusal": None}


def render_chat(
    req: ChatRequest, answer: Answer | None, envelope: ChatEnvelope
) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """The `chat.completion` body, and the stream chunks when the request asked to stream.

    A scripted answer gives every one of the `n` choices the same content; default answers
    differ per choice (unless temperature is 0).
    """
    choices = [_choice(req, answer, envelope, i) for i in range(req.n)]
    completion_tokens = sum(_completion_tokens(c, req) for c in choices)
    usage = {
        "prompt_tokens": req.prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": req.prompt_tokens + completion_tokens,
    }
    base = {
        "id": envelope.completion_id,
        "object": "chat.completion",
        "created": envelope.created,
        "model": req.model,
        "system_fingerprint": envelope.fingerprint,
    }
    body = {
        **base,
        "choices": [
            {
                "index": c.index,
                "message": _message(c),
                "logprobs": _logprobs(c),
                "finish_reason": c.finish_reason,
                "stop_reason": c.stop_reason,
            }
            for c in choices
        ],
        "usage": usage,
    }
    chunks = None
    if req.stream:
        chunks = chat_chunks(
            {**base, "object": "chat.completion.chunk"},
            choices,
            usage,
            req.include_usage,
            hosted=req.provider == UPSTASH_PROVIDER,
        )
    return body, chunks
