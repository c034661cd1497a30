"""Request validation with OpenAI's ranges and error messages.

Each `validate_*` function takes the decoded request and returns a typed request object or
raises `OpenAIError` (status 400, or 404 for an unknown Upstash model). `null` counts
as "not given" for every optional parameter, as with OpenAI. Unknown parameters are ignored:
clients keep adding new ones and a strict check would break them for no gain.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .catalog import CONTEXT_LENGTH, UPSTASH_PROVIDER
from .errors import OpenAIError
from .tokenizers import for_request, tools_tokens
from .tokens import count_message_tokens, count_tokens

__all__ = [
    "ChatRequest",
    "CompletionRequest",
    "Fields",
    "Sampling",
    "invalid_value",
    "missing",
    "require_model",
    "type_error",
    "validate_chat",
    "validate_completion",
]

_CHAT_ROLES = ("system", "assistant", "user", "function", "tool", "developer")
_MAX_STOP_SEQUENCES = 4


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return "an unsupported value"


def _quote_list(values: Sequence[str]) -> str:
    quoted = [f"'{v}'" for v in values]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]


def type_error(name: str, expected: str, value: Any) -> OpenAIError:
    """OpenAI's 400 for a field of the wrong type."""
    return OpenAIError(
        f"Invalid type for '{name}': expected {expected}, but got {_describe(value)} instead.",
        param=name,
        code="invalid_type",
    )


def missing(name: str) -> OpenAIError:
    """OpenAI's 400 for a missing required field."""
    return OpenAIError(
        f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter"
    )


def invalid_value(name: str, value: Any, allowed: Sequence[str]) -> OpenAIError:
    """OpenAI's 400 for a value outside the allowed ones."""
    return OpenAIError(
        f"Invalid value: '{value}'. Supported values are: {_quote_list(allowed)}.",
        param=name,
        code="invalid_value",
    )


class Fields:
    """Typed access to the optional fields of a request body.

    `form=True` accepts numbers and booleans written as strings, as multipart form fields
    (audio, image edits) carry them.
    """

    def __init__(self, body: Mapping[str, Any], *, form: bool = False, prefix: str = "") -> None:
        self.body = body
        self.form = form
        self.prefix = prefix  # for nested objects: errors name e.g. "response_format.type"

    def get(self, name: str) -> Any:
        """The raw value of `name`, or None."""
        return self.body.get(name)

    def number(
        self, key: str, *, lo: float, hi: float, default: float | None = None
    ) -> float | None:
        """The number `key`, within `lo`..`hi`; `default` when absent.

        Raises:
            OpenAIError: 400 for a non-number or one out of range.
        """
        name = self.prefix + key
        value = self.body.get(key)
        if value is None:
            return default
        if self.form and isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise type_error(name, "a decimal", value) from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise type_error(name, "a decimal", value)
        if math.isnan(value):
            raise type_error(name, "a decimal", "nan")
        if value > hi:
            raise OpenAIError(
                f"Invalid '{name}': decimal above maximum value. "
                f"Expected a value <= {hi:g}, but got {value:g} instead.",
                param=name,
                code="decimal_above_max_value",
            )
        if value < lo:
            raise OpenAIError(
                f"Invalid '{name}': decimal below minimum value. "
                f"Expected a value >= {lo:g}, but got {value:g} instead.",
                param=name,
                code="decimal_below_min_value",
            )
        return float(value)

    def integer(
        self, key: str, *, lo: int | None = None, hi: int | None = None, default: int | None = None
    ) -> int | None:
        """The integer `key`, within `lo`..`hi` when given; `default` when absent.

        Raises:
            OpenAIError: 400 for a non-integer or one out of range.
        """
        name = self.prefix + key
        value = self.body.get(key)
        if value is None:
            return default
        if self.form and isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise type_error(name, "an integer", value) from None
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON has one number type; 2.0 is a fine "n"
        if isinstance(value, bool) or not isinstance(value, int):
            raise type_error(name, "an integer", value)
        if hi is not None and value > hi:
            raise OpenAIError(
                f"Invalid '{name}': integer above maximum value. "
                f"Expected a value <= {hi}, but got {value} instead.",
                param=name,
                code="integer_above_max_value",
            )
        if lo is not None and value < lo:
            raise OpenAIError(
                f"Invalid '{name}': integer below minimum value. "
                f"Expected a value >= {lo}, but got {value} instead.",
                param=name,
                code="integer_below_min_value",
            )
        return value

    def boolean(self, key: str, *, default: bool = False) -> bool:
        """The boolean `key`; `default` when absent.

        Raises:
            OpenAIError: 400 for a non-boolean.
        """
        name = self.prefix + key
        value = self.body.get(key)
        if value is None:
            return default
        if self.form and isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise type_error(name, "a boolean", value)
        return value

    def string(self, key: str, *, required: bool = False) -> str | None:
        """The string `key`, or None when absent.

        Raises:
            OpenAIError: 400 when missing but `required`, or not a string.
        """
        name = self.prefix + key
        value = self.body.get(key)
        if value is None:
            if required:
                raise missing(name)
            return None
        if not isinstance(value, str):
            raise type_error(name, "a string", value)
        if required and not value:
            raise OpenAIError(
                f"Invalid '{name}': empty string. Expected a non-empty string.",
                param=name,
                code="empty_string",
            )
        return value

    def choice(self, key: str, allowed: Sequence[str], *, default: str) -> str:
        """The string `key`, one of `allowed`; `default` when absent.

        Raises:
            OpenAIError: 400 for another value.
        """
        value = self.string(key)
        if value is None:
            return default
        if value not in allowed:
            raise invalid_value(self.prefix + key, value, allowed)
        return value

    def mapping(self, key: str) -> Mapping[str, Any] | None:
        """The object `key`, or None when absent.

        Raises:
            OpenAIError: 400 for a non-object.
        """
        name = self.prefix + key
        value = self.body.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise type_error(name, "an object", value)
        return value

    def stop(self) -> tuple[str, ...]:
        """The `stop` sequences (a string or a list of at most four), or ().

        Raises:
            OpenAIError: 400 for another type or too many.
        """
        value = self.body.get("stop")
        if value is None:
            return ()
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
            raise type_error("stop", "a string or an array of strings", value)
        if len(items) > _MAX_STOP_SEQUENCES:
            raise OpenAIError(
                f"Invalid 'stop': array too long. Expected an array with maximum length "
                f"{_MAX_STOP_SEQUENCES}, but got an array with length {len(items)} instead.",
                param="stop",
                code="array_above_max_length",
            )
        return tuple(s for s in items if s)  # an empty stop string can never be "generated"

    def logit_bias(self) -> dict[str, float]:
        """The `logit_bias` map (token id -> bias in -100..100), or {}.

        Raises:
            OpenAIError: 400 for a non-numeric token id or a bias out of range.
        """
        value = self.mapping("logit_bias")
        if value is None:
            return {}
        result: dict[str, float] = {}
        for key, bias in value.items():
            if not str(key).isdigit():
                raise OpenAIError(
                    f"Invalid key in 'logit_bias': {key}. Keys must be token IDs (integers).",
                    param="logit_bias",
                    code="invalid_value",
                )
            name = f"logit_bias.{key}"
            checked = Fields({name: bias}).number(name, lo=-100, hi=100)
            assert checked is not None
            result[str(key)] = checked
        return result

    def stream_options(self, stream: bool) -> bool:
        """Whether the stream should end with a usage chunk."""
        options = self.mapping("stream_options")
        if options is None:
            return False
        if not stream:
            raise OpenAIError(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
                code="invalid_value",
            )
        return Fields(options, prefix="stream_options.").boolean("include_usage")


def require_model(body: Mapping[str, Any]) -> str:
    """The required `model` field.

    Raises:
        OpenAIError: 400 when missing or not a string.
    """
    model = Fields(body).string("model", required=True)
    assert model is not None
    return model


def _check_upstash_model(model: str, provider: str, upstash_models: Mapping[str, Any]) -> None:
    """Upstash serves a fixed list of models; OpenAI and custom providers accept any name.

    An unknown model is a 404 with code `model_not_found`, as OpenAI and vLLM (which the
    Upstash-hosted API is built on) answer it.
    """
    if provider == UPSTASH_PROVIDER and model not in upstash_models:
        raise OpenAIError(
            f"The model `{model}` does not exist or you do not have access to it.",
            status=404,
            code="model_not_found",
        )


def _check_context(model: str, provider: str, prompt_tokens: int, max_tokens: int | None) -> None:
    """The Upstash models have a context window; vLLM refuses requests that cannot fit."""
    limit = CONTEXT_LENGTH.get(model) if provider == UPSTASH_PROVIDER else None
    if limit is None:
        return
    wanted = prompt_tokens + (max_tokens or 0)
    if wanted > limit:
        raise OpenAIError(
            f"This model's maximum context length is {limit} tokens. However, you requested "
            f"{wanted} tokens ({prompt_tokens} in the messages, {max_tokens or 0} in the "
            "completion). Please reduce the length of the messages or completion.",
            param="messages",
            code="context_length_exceeded",
        )


@dataclass(frozen=True)
class Sampling:
    """The sampling parameters; they feed the default text's hash, so changing one changes it."""

    temperature: float | None
    top_p: float | None
    frequency_penalty: float | None
    presence_penalty: float | None
    logit_bias: dict[str, float]
    seed: int | None

    @property
    def greedy(self) -> bool:
        """Temperature 0 is greedy decoding: the seed and the choice index no longer matter."""
        return self.temperature == 0

    def key(self) -> dict[str, Any]:
        """The parameters as they enter the default text's hash (the seed only when not greedy)."""
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "frequency_penalty": self.frequency_penalty,
            "presence_penalty": self.presence_penalty,
            "logit_bias": self.logit_bias,
            "seed": None if self.greedy else self.seed,
        }


def _sampling(fields: Fields) -> Sampling:
    return Sampling(
        temperature=fields.number("temperature", lo=0, hi=2),
        top_p=fields.number("top_p", lo=0, hi=1),
        frequency_penalty=fields.number("frequency_penalty", lo=-2, hi=2),
        presence_penalty=fields.number("presence_penalty", lo=-2, hi=2),
        logit_bias=fields.logit_bias(),
        seed=fields.integer("seed"),
    )


@dataclass(frozen=True)
class ChatRequest:
    """A validated chat completion request."""

    model: str
    provider: str
    messages: list[dict[str, Any]]
    n: int
    max_tokens: int | None
    stop: tuple[str, ...]
    stream: bool
    include_usage: bool
    logprobs: bool
    top_logprobs: int
    response_format: str  # "text", "json_object" or "json_schema"
    json_schema: Mapping[str, Any] | None
    tools: list[dict[str, Any]]
    tool_choice: str | dict[str, Any]  # "none", "auto", "required" or a named function
    sampling: Sampling
    prompt_tokens: int

    def forced_tool(self) -> dict[str, Any] | None:
        """The tool a default answer must call (`tool_choice` required or named), if any."""
        if not self.tools or self.tool_choice in ("none", "auto"):
            return None
        if isinstance(self.tool_choice, dict):
            name = self.tool_choice["function"]["name"]
            return next(t for t in self.tools if t["function"]["name"] == name)
        return self.tools[0]


def _validate_message(index: int, message: Any) -> dict[str, Any]:
    where = f"messages[{index}]"
    if not isinstance(message, Mapping):
        raise type_error(where, "an object", message)
    role = message.get("role")
    if role is None:
        raise missing(f"{where}.role")
    if not isinstance(role, str):
        raise type_error(f"{where}.role", "a string", role)
    if role not in _CHAT_ROLES:
        raise invalid_value(f"{where}.role", role, _CHAT_ROLES)
    content = message.get("content")
    may_omit_content = role == "assistant" and (
        message.get("tool_calls") or message.get("function_call")
    )
    if content is None and not may_omit_content:
        raise missing(f"{where}.content")
    if content is not None and not isinstance(content, (str, list)):
        raise type_error(f"{where}.content", "a string or an array of content parts", content)
    if isinstance(content, list):
        for part_index, part in enumerate(content):
            name = f"{where}.content[{part_index}]"
            if not isinstance(part, Mapping):
                raise type_error(name, "an object", part)
            if part.get("type") == "text" and not isinstance(part.get("text"), str):
                raise type_error(f"{name}.text", "a string", part.get("text"))
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        raise missing(f"{where}.tool_call_id")
    tool_calls = message.get("tool_calls")
    if tool_calls is not None and not isinstance(tool_calls, list):
        raise type_error(f"{where}.tool_calls", "an array", tool_calls)
    return dict(message)


def _validate_tools(fields: Fields) -> list[dict[str, Any]]:
    tools = fields.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise type_error("tools", "an array", tools)
    result = []
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        if not isinstance(tool, Mapping):
            raise type_error(where, "an object", tool)
        if tool.get("type", "function") != "function":
            raise invalid_value(f"{where}.type", tool.get("type"), ["function"])
        function = tool.get("function")
        if not isinstance(function, Mapping):
            raise missing(f"{where}.function")
        if not isinstance(function.get("name"), str) or not function["name"]:
            raise missing(f"{where}.function.name")
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, Mapping):
            raise type_error(f"{where}.function.parameters", "an object", parameters)
        result.append({"type": "function", "function": dict(function)})
    return result


def _validate_tool_choice(fields: Fields, tools: list[dict[str, Any]]) -> str | dict[str, Any]:
    choice = fields.get("tool_choice")
    if choice is None:
        return "auto" if tools else "none"
    if not tools:
        raise OpenAIError(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are "
            "specified.",
            param="tool_choice",
            code="invalid_value",
        )
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise invalid_value("tool_choice", choice, ["none", "auto", "required"])
        return choice
    if isinstance(choice, Mapping):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, Mapping) else None
        if not isinstance(name, str):
            raise missing("tool_choice.function.name")
        if name not in [t["function"]["name"] for t in tools]:
            raise OpenAIError(
                f"Invalid value for 'tool_choice': function '{name}' is not in 'tools'.",
                param="tool_choice",
                code="invalid_value",
            )
        return {"type": "function", "function": {"name": name}}
    raise type_error("tool_choice", "a string or an object", choice)


def _validate_response_format(fields: Fields) -> tuple[str, Mapping[str, Any] | None]:
    response_format = fields.mapping("response_format")
    if response_format is None:
        return "text", None
    kind = Fields(response_format, prefix="response_format.").choice(
        "type", ["text", "json_object", "json_schema"], default="text"
    )
    if kind != "json_schema":
        return kind, None
    spec = response_format.get("json_schema")
    if not isinstance(spec, Mapping):
        raise missing("response_format.json_schema")
    schema = spec.get("schema", {})
    if not isinstance(schema, Mapping):
        raise type_error("response_format.json_schema.schema", "an object", schema)
    return kind, schema


def validate_chat(body: Any, *, provider: str, upstash_models: Mapping[str, Any]) -> ChatRequest:
    """Check a chat completion request body as OpenAI (or Upstash, for its models) does.

    Args:
        body: The decoded JSON body.
        provider: "upstash" (only its hosted models) or another provider name (any model).
        upstash_models: The models Upstash serves, with their context lengths.

    Raises:
        OpenAIError: 400 (or 404 for an unknown Upstash model) in OpenAI's words.
    """
    if not isinstance(body, Mapping):
        raise OpenAIError("The request body must be a JSON object.", code="invalid_type")
    fields = Fields(body)
    model = require_model(body)
    messages = body.get("messages")
    if messages is None:
        raise missing("messages")
    if not isinstance(messages, list):
        raise type_error("messages", "an array", messages)
    if not messages:
        raise OpenAIError(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    checked = [_validate_message(i, m) for i, m in enumerate(messages)]
    _check_upstash_model(model, provider, upstash_models)
    logprobs = fields.boolean("logprobs")
    top_logprobs = fields.integer("top_logprobs", lo=0, hi=20)
    if top_logprobs is not None and not logprobs:
        raise OpenAIError(
            "Invalid value for 'top_logprobs': 'logprobs' must be set to true when "
            "'top_logprobs' is used.",
            param="top_logprobs",
            code="invalid_value",
        )
    # max_completion_tokens is the newer name of max_tokens; it wins when both are given.
    max_tokens = fields.integer("max_completion_tokens", lo=1)
    if max_tokens is None:
        max_tokens = fields.integer("max_tokens", lo=1)
    stream = fields.boolean("stream")
    tools = _validate_tools(fields)
    response_format, json_schema = _validate_response_format(fields)
    tokenizer = for_request(model, provider)
    if tokenizer is not None:
        prompt_tokens = tokenizer.chat_prompt_tokens(checked) + tools_tokens(tokenizer, tools)
    else:
        prompt_tokens = count_message_tokens(checked, tools)
    _check_context(model, provider, prompt_tokens, max_tokens)
    n = fields.integer("n", lo=1, hi=128, default=1)
    assert n is not None
    return ChatRequest(
        model=model,
        provider=provider,
        messages=checked,
        n=n,
        max_tokens=max_tokens,
        stop=fields.stop(),
        stream=stream,
        include_usage=fields.stream_options(stream),
        logprobs=logprobs,
        top_logprobs=top_logprobs or 0,
        response_format=response_format,
        json_schema=json_schema,
        tools=tools,
        tool_choice=_validate_tool_choice(fields, tools),
        sampling=_sampling(fields),
        prompt_tokens=prompt_tokens,
    )


@dataclass(frozen=True)
class CompletionRequest:
    """A validated legacy completion request."""

    model: str
    provider: str
    prompts: list[str]
    n: int
    max_tokens: int
    stop: tuple[str, ...]
    stream: bool
    include_usage: bool
    logprobs: int | None
    echo: bool
    sampling: Sampling
    prompt_tokens: int


_DEFAULT_COMPLETION_MAX_TOKENS = 16  # OpenAI's (and vLLM's) default for the legacy endpoint


def _prompts(value: Any) -> list[str]:
    """A prompt is a string, a list of strings, a token list, or a list of token lists."""
    if value is None:
        raise missing("prompt")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(p, str) for p in value):
            return list(value)
        if all(isinstance(t, int) and not isinstance(t, bool) for t in value):
            return [" ".join(str(t) for t in value)]
        if all(isinstance(p, list) and all(isinstance(t, int) for t in p) for p in value):
            return [" ".join(str(t) for t in p) for p in value]
    raise type_error("prompt", "a string or an array of strings or tokens", value)


def validate_completion(
    body: Any, *, provider: str, upstash_models: Mapping[str, Any]
) -> CompletionRequest:
    """Check a legacy completion request body as OpenAI does (see `validate_chat`).

    Raises:
        OpenAIError: 400 (or 404 for an unknown Upstash model) in OpenAI's words.
    """
    if not isinstance(body, Mapping):
        raise OpenAIError("The request body must be a JSON object.", code="invalid_type")
    fields = Fields(body)
    model = require_model(body)
    prompts = _prompts(body.get("prompt"))
    _check_upstash_model(model, provider, upstash_models)
    n = fields.integer("n", lo=1, hi=128, default=1)
    assert n is not None
    best_of = fields.integer("best_of", lo=1, hi=20)
    if best_of is not None and best_of < n:
        raise OpenAIError(
            "best_of must be greater than or equal to n.", param="best_of", code="invalid_value"
        )
    max_tokens = fields.integer("max_tokens", lo=1, default=_DEFAULT_COMPLETION_MAX_TOKENS)
    assert max_tokens is not None
    tokenizer = for_request(model, provider)
    # The hosted models' server adds the beginning-of-text token to a raw prompt.
    per_prompt = [tokenizer.count(p) + 1 if tokenizer else count_tokens(p) for p in prompts]
    prompt_tokens = sum(per_prompt)
    _check_context(model, provider, max(per_prompt), max_tokens)
    fields.string("suffix")
    stream = fields.boolean("stream")
    return CompletionRequest(
        model=model,
        provider=provider,
        prompts=prompts,
        n=n,
        max_tokens=max_tokens,
        stop=fields.stop(),
        stream=stream,
        include_usage=fields.stream_options(stream),
        logprobs=fields.integer("logprobs", lo=0, hi=5),
        echo=fields.boolean("echo"),
        sampling=_sampling(fields),
        prompt_tokens=prompt_tokens,
    )
