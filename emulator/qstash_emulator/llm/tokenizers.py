"""The Upstash-hosted models' own tokenizers, from packages that ship them in their wheels.

- `meta-llama/Meta-Llama-3-8B-Instruct`: Llama 3's byte-level BPE from `quicktok-v1`
  (`quicktok.get_encoding("llama3")`, ids identical to Meta's tokenizer; the vocabulary is in
  the wheel).
- `mistralai/Mistral-7B-Instruct-v0.2`: Mistral's v1 SentencePiece model (32 000 pieces) from
  `mistral-common` (`MistralTokenizer.v1()`, the model file is in the wheel; Python 3.11+).

Both come with the optional extra `qstash-emulator[tokenizers]` and need no download at run time.
Without them (or for any other model) counts come from the approximation in `tokens.py`.
Prompt counts follow each model's chat template as vLLM renders it.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from .catalog import LLAMA_3_8B, MISTRAL_7B, UPSTASH_PROVIDER
from .tokens import content_text

__all__ = [
    "Llama3",
    "MistralV1",
    "ModelTokenizer",
    "for_request",
    "model_tokenizer",
    "tools_tokens",
]


class ModelTokenizer(Protocol):
    """What the emulator needs of a hosted model's tokenizer."""

    def count(self, text: str) -> int:
        """Tokens of a plain text (no special tokens)."""

    def truncate(self, text: str, tokens: int) -> str:
        """The text of the first `tokens` tokens of `text`."""

    def chat_prompt_tokens(self, messages: Sequence[Mapping[str, Any]]) -> int:
        """Tokens of the chat template rendered for `messages`, ready for the reply."""


def _extras(tokenizer: ModelTokenizer, message: Mapping[str, Any]) -> int:
    """A name and tool calls are not in these templates; they still cost their text."""
    total = 0
    name = message.get("name")
    if isinstance(name, str):
        total += tokenizer.count(name)
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(function, Mapping):
            total += tokenizer.count(str(function.get("name", "")))
            total += tokenizer.count(str(function.get("arguments", "")))
    return total


class Llama3:
    """Meta-Llama-3-8B-Instruct's tokenizer (quicktok-v1's "llama3" encoding).

    Raises:
        ImportError: When quicktok-v1 is not installed.
    """

    def __init__(self) -> None:
        self._enc: Any = importlib.import_module("quicktok").get_encoding("llama3")

    def count(self, text: str) -> int:
        """Tokens of a plain text (special-token strings count as text)."""
        return int(self._enc.count(text))

    def truncate(self, text: str, tokens: int) -> str:
        """The text of the first `tokens` tokens of `text`."""
        return str(self._enc.decode(self._enc.encode_ordinary(text)[:tokens]))

    def chat_prompt_tokens(self, messages: Sequence[Mapping[str, Any]]) -> int:
        """Tokens of the rendered chat template, up to the assistant's header."""
        # Meta-Llama-3-8B-Instruct's template: <|begin_of_text|>, then per message
        # <|start_header_id|>{role}<|end_header_id|>\n\n{content | trim}<|eot_id|>, then the
        # assistant's header. Special tokens are counted as such, the rest as plain text
        # (the text between them splits there anyway, so the parts add up).
        total = 1 + 2 + self.count("assistant") + self.count("\n\n")
        for message in messages:
            content = content_text(message.get("content")).strip()
            total += 3 + self.count(str(message.get("role"))) + self.count("\n\n" + content)
        return total + sum(_extras(self, m) for m in messages)


class MistralV1:
    """Mistral-7B-Instruct-v0.2's tokenizer (mistral-common's v1 SentencePiece model).

    Raises:
        ImportError: When mistral-common (with sentencepiece) is not installed.
    """

    # SentencePiece is slow on huge texts; past this many characters a count is the lower bound
    # len/longest piece (16 characters), already far beyond the 32k-token context.
    EXACT_UP_TO = 1_000_000

    def __init__(self) -> None:
        module = importlib.import_module("mistral_common.tokens.tokenizers.mistral")
        self._mistral: Any = module.MistralTokenizer.v1()
        self._sp: Any = self._mistral.instruct_tokenizer.tokenizer
        self._longest = max(len(self._sp.id_to_piece(i)) for i in range(self._sp.n_words))
        self._messages: Any = importlib.import_module("mistral_common.protocol.instruct.messages")
        self._request: Any = importlib.import_module(
            "mistral_common.protocol.instruct.request"
        ).ChatCompletionRequest

    def _ids(self, text: str) -> list[int]:
        ids: list[int] = self._sp.encode(text, bos=False, eos=False)
        return ids

    def count(self, text: str) -> int:
        """Tokens of a plain text (a lower bound past `EXACT_UP_TO` characters)."""
        if len(text) > self.EXACT_UP_TO:
            return -(-len(text) // self._longest)
        return len(self._ids(text))

    def truncate(self, text: str, tokens: int) -> str:
        """The text of the first `tokens` tokens of `text`."""
        return str(self._sp.decode(self._ids(text)[:tokens]))

    def chat_prompt_tokens(self, messages: Sequence[Mapping[str, Any]]) -> int:
        """Tokens of the v1 instruct template (`<s>[INST] ... [/INST]` turns)."""
        texts = [content_text(m.get("content")) for m in messages]
        if sum(len(t) for t in texts) > self.EXACT_UP_TO:
            return 1 + sum(self.count(t) + 8 for t in texts)
        kinds = {
            "system": self._messages.SystemMessage,
            "user": self._messages.UserMessage,
            "assistant": self._messages.AssistantMessage,
        }
        try:
            request = self._request(
                messages=[
                    kinds[str(m.get("role"))](content=t)
                    for m, t in zip(messages, texts, strict=True)
                ]
            )
            encoded = self._mistral.encode_chat_completion(request)
            rendered = len(encoded.tokens)
        except Exception:
            # <s>, then "[INST] ... [/INST]" (8 tokens of markers) per turn.
            rendered = 1 + sum(self.count(t) + 8 for t in texts)
        return rendered + sum(_extras(self, m) for m in messages)


_LOADERS: dict[str, Callable[[], ModelTokenizer]] = {LLAMA_3_8B: Llama3, MISTRAL_7B: MistralV1}
_loaded: dict[str, ModelTokenizer | None] = {}
_lock = threading.Lock()
# Tests turn this off to check the approximation the emulator falls back to.
enabled = True


def model_tokenizer(model: str) -> ModelTokenizer | None:
    """The hosted model's own tokenizer, or None.

    None for a model that is not hosted, or when its package is not installed. Loaded once per
    process, on first use.
    """
    loader = _LOADERS.get(model)
    if loader is None or not enabled:
        return None
    with _lock:
        if model not in _loaded:
            try:
                _loaded[model] = loader()
            except ImportError:
                _loaded[model] = None
        return _loaded[model]


def for_request(model: str, provider: str) -> ModelTokenizer | None:
    """The tokenizer a request to `model` through `provider` counts with (hosted models only)."""
    return model_tokenizer(model) if provider == UPSTASH_PROVIDER else None


def tools_tokens(tokenizer: ModelTokenizer, tools: Sequence[Mapping[str, Any]]) -> int:
    """Tokens of the tool definitions of a chat request (their JSON)."""
    return sum(tokenizer.count(json.dumps(tool, sort_keys=True)) for tool in tools)
