"""LLM publishing through QStash: the `api/llm` destination and LLM provider hosts.

- `api/llm` (the 2.0.x SDK's `api={"name": "llm", "provider": upstash()}`) and a provider's chat
  completions URL (`openai(...)` / `custom(base_url, token)`, sent by both SDK lines as
  `<base_url>/v1/chat/completions` with `Upstash-Forward-Authorization`) must carry a chat
  completion request and an `Upstash-Callback`, and must not stream: checked at publish,
  enqueue and batch time, before anything is created.
- Deliveries to `api/llm` and to provider hosts (api.openai.com and the bases added with
  `LLMProviders.add`) are answered by the scripted engine, never the network, unless
  `passthrough` is set; the answer is then signed, retried, logged and sent to the callback
  like any delivery's. A provider's 429 carries `x-ratelimit-reset-*`, which the engine's retry
  honours, so the retry happens when the limit resets.
"""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any

from ..core.delivery import Outgoing
from ..core.errors import bad_request
from ..core.state import Response
from ..core.users import User
from ..parsing import header_names as h
from ..parsing import safe_json
from ..parsing.publish_headers import MessageSpec, is_url
from ..resources.destinations import Fanout
from . import rules as r
from .catalog import UPSTASH_PROVIDER
from .errors import OpenAIError
from .requests import (
    FORM_ENDPOINTS,
    IMAGE_ROUTE_PREFIX,
    MODELS,
    Files,
    LLMRequest,
    encode_outcome,
    endpoint_for_tail,
    error_outcome,
    form_fields,
    run_request,
)
from .validation import validate_chat

if TYPE_CHECKING:
    from . import LLMOutcome
    from .service import LLMService

__all__ = [
    "NO_KEY",
    "UPSTASH_LLM_URL",
    "LLMGateway",
    "LLMProviders",
    "invalid_json",
    "parse_multipart",
    "rate_limited",
]

_API_LLM = "api/llm"
# Where `api/llm` messages go (their `url` in logs and callbacks): Upstash's own chat API.
_UPSTASH_LLM_BASE = "https://qstash.upstash.io/llm"
UPSTASH_LLM_URL = _UPSTASH_LLM_BASE + "/v1/chat/completions"
_OPENAI_BASE = "https://api.openai.com"
_SDK_SUFFIX = re.compile(r"/(v1/)?chat/completions$")  # what the SDKs' custom() strips

NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)


class LLMProviders:
    """Provider hosts whose deliveries the scripted engine answers (base URL -> name)."""

    def __init__(self) -> None:
        self.bases: dict[str, str] = {}
        self.passthrough = False
        self.reset()

    def reset(self) -> None:
        """Back to answering api.openai.com only, with passthrough off."""
        self.bases = {_OPENAI_BASE: "openai"}
        self.passthrough = False
        self._longest_first: list[str] | None = None

    def add(self, base_url: str, name: str = "custom") -> None:
        """Answer deliveries under `base_url` from the script (rules see `provider=name`).

        Give the base as for the SDKs' `custom(base_url, token)`.

        Raises:
            ValueError: If `base_url` is not an http(s) URL.
        """
        if not is_url(base_url):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        self.bases[_SDK_SUFFIX.sub("", base_url.rstrip("/"))] = name.lower()
        self._longest_first = None

    def remove(self, base_url: str) -> None:
        """Stop answering deliveries under `base_url`."""
        self.bases.pop(_SDK_SUFFIX.sub("", base_url.rstrip("/")), None)
        self._longest_first = None

    def match(self, url: str) -> tuple[str, str] | None:
        """(provider name, path after the base) for a URL under a known base."""
        path = url.split("?", 1)[0].split("#", 1)[0]
        if self._longest_first is None:  # every publish asks: sort once per change
            self._longest_first = sorted(self.bases, key=len, reverse=True)
        for base in self._longest_first:
            if path.startswith(base + "/"):
                return self.bases[base], path[len(base) :]
        return None


def _body_json(body: bytes) -> Any:
    try:
        return safe_json.loads(body) if body.strip() else None
    except ValueError:
        return _INVALID


_INVALID = object()


def _check_chat_publish(
    spec: MessageSpec, body: bytes, provider: str, upstash_models: dict[str, Any]
) -> None:
    """What QStash requires of an LLM publish; raises QStash's 400."""
    if spec.callback is None:
        raise bad_request(
            "an LLM destination (api/llm or an LLM provider's chat completions URL) requires "
            "an Upstash-Callback header: the completion is delivered to the callback"
        )
    data = _body_json(body)
    if not isinstance(data, dict):
        raise bad_request(
            "the body of an LLM publish must be a chat completion request (a JSON object with "
            "model and messages)"
        )
    if data.get("stream") is True:
        raise bad_request(
            "streaming chat completions cannot be published or enqueued; use the chat API "
            "(POST /llm/v1/chat/completions with stream) to stream"
        )
    try:
        validate_chat(data, provider=provider, upstash_models=upstash_models)
    except OpenAIError as exc:
        raise bad_request(f"invalid chat completion request: {exc.message}") from None


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, list[str]], Files]:
    """The fields and files of a multipart/form-data body (a delivery's, not a request's)."""
    raw = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    message = BytesParser(policy=policy.HTTP).parsebytes(raw)
    fields: dict[str, list[str]] = {}
    files: Files = {}
    if not message.is_multipart():
        return fields, files
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            files.setdefault(name, (data, filename))
        else:
            fields.setdefault(name, []).append(data.decode("utf-8", "replace"))
    return fields, files


class LLMGateway:
    """Claims LLM destinations at publish time and answers their deliveries."""

    def __init__(self, service: LLMService) -> None:
        self.service = service

    # -- publish ----------------------------------------------------------------------------
    def resolve(self, user: User, destination: str) -> list[Fanout] | None:
        """A `destinations` resolver: `api/llm` and provider chat URLs, with their checks."""
        models = self.service.llm.upstash_models
        if destination.rstrip("/") == _API_LLM:

            def check_upstash(spec: MessageSpec, body: bytes) -> None:
                _check_chat_publish(spec, body, UPSTASH_PROVIDER, models)

            return [
                Fanout(
                    UPSTASH_LLM_URL, {"api": "llm"}, dedup_destination=_API_LLM, check=check_upstash
                )
            ]
        target = self.service.providers.match(destination) if is_url(destination) else None
        if target is None or endpoint_for_tail(target[1]) != r.CHAT:
            return None
        provider = target[0]

        def check_provider(spec: MessageSpec, body: bytes) -> None:
            _check_chat_publish(spec, body, provider, models)

        return [Fanout(destination, check=check_provider)]

    # -- delivery ---------------------------------------------------------------------------
    def target(self, url: str) -> tuple[str, str] | None:
        """(provider, path tail) when the engine answers `url`'s deliveries."""
        path = url.split("?", 1)[0]
        if path.startswith(_UPSTASH_LLM_BASE + "/"):
            return UPSTASH_PROVIDER, path[len(_UPSTASH_LLM_BASE) :]
        if self.service.providers.passthrough:
            return None
        return self.service.providers.match(url)

    async def intercept(self, out: Outgoing) -> Response | None:
        """A Delivery interceptor: the scripted engine answers LLM hosts in their place."""
        target = self.target(out.url)
        if target is None:
            return None
        provider, tail = target
        headers = {name.lower(): value for name, value in out.headers}
        service = self.service
        if provider != UPSTASH_PROVIDER and not _bearer(headers.get("authorization")):
            return _to_response(error_outcome(OpenAIError(NO_KEY, status=401)))
        decoded = self._decode(out, tail, headers.get("content-type", ""), provider)
        if not isinstance(decoded, LLMRequest):
            return _to_response(decoded)
        if provider == UPSTASH_PROVIDER and decoded.endpoint == r.CHAT:
            # Upstash's chat limits hold for published requests too; the 429's reset headers
            # schedule the retry.
            who = self._user_of(headers.get("upstash-message-id"))
            limited = service.check_chat_limit(who, decoded.body) if who else None
            if limited is not None:
                return _to_response(error_outcome(rate_limited(), limited))
        outcome = run_request(service.llm, decoded, service.now())
        if outcome.latency >= out.timeout:
            return Response(None, {}, b"", error=f"request timed out after {out.timeout:g}s")
        if not service.clock.virtual:
            await service.sleep(outcome.latency)
        # On a virtual clock the answer is immediate: a delivery runs inside the scheduler's
        # step, which cannot wait for a later step (only a timeout is simulated).
        return _to_response(outcome)

    def _decode(
        self, out: Outgoing, tail: str, content_type: str, provider: str
    ) -> LLMRequest | LLMOutcome:
        method = out.method.upper()
        image_base = self.service.public_url() + IMAGE_ROUTE_PREFIX
        path = tail.rstrip("/")
        if method == "GET":
            _, sep, model_id = path.partition("/models/")
            if path.endswith("/models") or path == "models":
                return LLMRequest(MODELS, provider=provider)
            if sep and model_id:
                return LLMRequest(MODELS, provider=provider, model_id=model_id)
        endpoint = endpoint_for_tail(path) if method == "POST" else None
        if endpoint is None:
            return error_outcome(
                OpenAIError(
                    f"Invalid URL ({method} {tail})", status=404, type="invalid_request_error"
                )
            )
        if endpoint in FORM_ENDPOINTS:
            fields, files = parse_multipart(content_type, out.body)
            return LLMRequest(endpoint, form_fields(fields), files, provider, image_base)
        body = _body_json(out.body)
        if body is _INVALID:
            return error_outcome(invalid_json())
        return LLMRequest(endpoint, body, provider=provider, image_base=image_base)

    def _user_of(self, message_id: str | None) -> str | None:
        if not message_id:
            return None
        for name, state in self.service.engine.states.items():
            if message_id in state.messages:
                return name
        return None


def _bearer(value: str | None) -> bool:
    if not value:
        return False
    scheme, _, token = value.partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


def invalid_json() -> OpenAIError:
    """OpenAI's error for a body that is not valid JSON."""
    return OpenAIError(
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
        "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
        "sent was not valid JSON.)"
    )


def rate_limited() -> OpenAIError:
    """OpenAI's 429 for the chat request limit."""
    return OpenAIError(
        "Rate limit reached for chat completions. Please try again later.",
        status=429,
        type="requests",
        code="rate_limit_exceeded",
    )


def _to_response(outcome: LLMOutcome) -> Response:
    """An engine answer as a delivery's response (what logs, the DLQ and callbacks show)."""
    body, content_type = encode_outcome(outcome)
    pairs = [("Content-Type", content_type), *outcome.headers.items()]
    return Response(outcome.status, h.from_pairs(pairs), body)
