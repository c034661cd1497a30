"""Scripted, deterministic, transport-free LLM engine for the QStash emulator's LLM API.

See `LLMEngine`. The HTTP layer decodes a request, calls the engine with the clock's
`now` and renders the `LLMOutcome` it gets back.
"""

from .catalog import LLAMA_3_8B, MISTRAL_7B, UPSTASH_MODELS
from .engine import LLMCall, LLMEngine, LLMOutcome
from .errors import LLMErrorSpec, OpenAIError, error_body
from .images import make_png, png_size
from .rules import ENDPOINTS, TARGETS, Answer, MatchContext, Rule
from .script import ScriptError
from .tokens import count_tokens, split_tokens

__all__ = [
    "ENDPOINTS",
    "LLAMA_3_8B",
    "MISTRAL_7B",
    "TARGETS",
    "UPSTASH_MODELS",
    "Answer",
    "LLMCall",
    "LLMEngine",
    "LLMErrorSpec",
    "LLMOutcome",
    "MatchContext",
    "OpenAIError",
    "Rule",
    "ScriptError",
    "count_tokens",
    "error_body",
    "make_png",
    "png_size",
    "split_tokens",
]
