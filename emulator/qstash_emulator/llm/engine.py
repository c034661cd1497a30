"""The scripted LLM engine: validates a request, finds its rule, renders the outcome, records it.

Transport-free and synchronous: the HTTP layer decodes a request, calls one method here with the
clock's `now` and renders the returned `LLMOutcome` (waiting `latency` seconds on its
own clock first). A lock makes the engine safe to script from a test thread while a server
thread answers requests.
"""

from __future__ import annotations

import copy
import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import rules as r
from .audio import FormFields, render_audio, validate_audio
from .catalog import OTHER_MODELS, UPSTASH_MODELS, UPSTASH_PROVIDER, model_entry, models_list
from .chat import ChatEnvelope, render_chat
from .completions import render_completion
from .embeddings import render_embeddings, validate_embeddings
from .errors import LLMErrorSpec, OpenAIError
from .hashing import hex_id
from .images import ImageStore, render_images, validate_image
from .responder import default_transcript
from .rules import Answer, MatchContext, Rule, make_rule
from .script import read_script, rules_from_data
from .tokens import content_text
from .validation import validate_chat, validate_completion

__all__ = ["LLMCall", "LLMEngine", "LLMOutcome"]


@dataclass
class LLMOutcome:
    """What the HTTP layer renders.

    - `chunks` not None: a stream; send each chunk as an SSE `data:` event, then
      `data: [DONE]`. `body` then holds the equivalent non-streamed response (for records).
    - `raw` not None: send it as is with `content_type` (audio text/srt/vtt formats).
    - otherwise: send `body` as JSON with `status` and `headers`.
    """

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    latency: float = 0.0
    chunks: list[dict[str, Any]] | None = None
    raw: str | None = None
    content_type: str = "application/json"

    @property
    def ok(self) -> bool:
        """True for a status below 400."""
        return self.status < 400


@dataclass(frozen=True)
class LLMCall:
    """One request the engine answered, for assertions in tests."""

    endpoint: str  # one of ENDPOINTS, or "models"
    body: Any  # the request as received (a copy); form fields for audio and image edits
    rule: Rule | None  # the rule that answered, None for default answers and invalid requests
    outcome: LLMOutcome
    now: float
    provider: str | None = None
    files: Mapping[str, bytes] = field(default_factory=dict)


def _texts(messages: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    users = [m for m in messages if m.get("role") == "user"]
    systems = [m for m in messages if m.get("role") in ("system", "developer")]
    return {
        "last_user": content_text(users[-1].get("content")) if users else "",
        "last": content_text(messages[-1].get("content")) if messages else "",
        "system": content_text(systems[0].get("content")) if systems else "",
        "all": "\n".join(content_text(m.get("content")) for m in messages),
    }


def _single_text(text: str) -> dict[str, str]:
    return dict.fromkeys(r.TARGETS, text) | {"system": ""}


class LLMEngine:
    """Scripted OpenAI-compatible LLM: rules first (in order), then deterministic defaults."""

    def __init__(
        self, *, seed: int = 0, embedding_dim: int = 1536, default_latency: float = 0.0
    ) -> None:
        if embedding_dim < 1:
            raise ValueError("embedding_dim must be >= 1")
        self.seed = seed
        self.embedding_dim = embedding_dim
        self.default_latency = default_latency
        # Models the "upstash" provider serves; extend it to emulate a newly hosted model.
        self.upstash_models: dict[str, tuple[int, str]] = dict(UPSTASH_MODELS)
        self.calls: list[LLMCall] = []
        self._rules: list[Rule] = []
        self._images = ImageStore()
        self._serial = 0
        self._lock = threading.RLock()

    # -- scripting -------------------------------------------------------------------------

    @property
    def rules(self) -> list[Rule]:
        """A snapshot of the scripted rules, in the order they are tried."""
        with self._lock:
            return list(self._rules)

    def add_rule(self, rule: Rule) -> Rule:
        """Append a rule (tried after the earlier ones); returns it."""
        with self._lock:
            self._rules.append(rule)
        return rule

    def reply(
        self,
        *,
        model: str | Sequence[str] | None = None,
        provider: str | Sequence[str] | None = None,
        role: str | Sequence[str] | None = None,
        contains: str | None = None,
        regex: str | re.Pattern[str] | None = None,
        target: str = "last_user",
        message_count: int | None = None,
        turn: int | None = None,
        endpoint: str | Sequence[str] | None = None,
        content: str | None = None,
        json: Any = None,
        tool_calls: Sequence[Mapping[str, Any]] | None = None,
        sequence: Sequence[Any] | None = None,
        error: LLMErrorSpec | int | Mapping[str, Any] | None = None,
        latency: float | None = None,
        chunks: int | Sequence[str] | None = None,
        finish_reason: str | None = None,
        headers: Mapping[str, Any] | None = None,
        times: int | None = None,
        name: str | None = None,
    ) -> Rule:
        """Add a rule: an answer for the requests its match keys pick.

        Match keys narrow which requests it answers (all given must hold):

        `model`/`provider`/`role` (of the last message) take a name or a list of names;
        `contains` (case-sensitive substring) and `regex` (`re.search`) test the text
        picked by `target` ("last_user", "last", "system" or "all"); `message_count` is
        the number of messages and `turn` the number of user messages; `endpoint` is one
        or more of `ENDPOINTS` (default: "chat" and "completion").

        The answer is one of `content`, `json` (serialized as content), `tool_calls`
        (`[{"name": ..., "arguments": {...}}]` or OpenAI's shape), `error` (an
        `LLMErrorSpec`, a status or a mapping) or `sequence` (steps: strings, mappings
        of answer keys, error specs, or None for the default text); none of them answers with
        the default text. `latency` (clock seconds), `chunks` (tokens per stream delta, or
        the deltas), `finish_reason` and `headers` apply to every step. `times` retires
        the rule after that many answers.

        Scripted content still goes through `stop` and `max_tokens`, and is sent as is in
        JSON mode (the script plays the model, so it may also play one that breaks JSON).
        """
        rule = make_rule(
            model=model, provider=provider, role=role, contains=contains, regex=regex,
            target=target, message_count=message_count, turn=turn, endpoint=endpoint,
            content=content, json=json, tool_calls=tool_calls, sequence=sequence, error=error,
            latency=latency, chunks=chunks, finish_reason=finish_reason, headers=headers,
            times=times, name=name,
        )  # fmt: skip
        return self.add_rule(rule)

    def load_rules(self, data: Any, source: str = "<script>") -> list[Rule]:
        """Add the rules of an already decoded script (a list, or a mapping with `rules`)."""
        loaded = rules_from_data(data, source)
        with self._lock:
            self._rules.extend(loaded)
        return loaded

    def remove_rules(self, rules: Sequence[Rule]) -> None:
        """Drop these rule objects (seeded state re-applied replaces the rules it loaded)."""
        drop = {id(rule) for rule in rules}
        with self._lock:
            self._rules = [rule for rule in self._rules if id(rule) not in drop]

    def load_script(self, path: str | os.PathLike[str]) -> list[Rule]:
        """Add the rules of a YAML or JSON script file (see `.script`)."""
        return self.load_rules(read_script(path), os.fspath(path))

    def reset(self) -> None:
        """Forget rules (and so their progress), recorded calls and generated images."""
        with self._lock:
            self._rules.clear()
            self.calls.clear()
            self._images.clear()
            self._serial = 0

    @property
    def last_call(self) -> LLMCall | None:
        """The most recent call, or None."""
        with self._lock:
            return self.calls[-1] if self.calls else None

    # -- plumbing --------------------------------------------------------------------------

    def _next_serial(self) -> int:
        self._serial += 1
        return self._serial

    def _find(self, ctx: MatchContext) -> tuple[Rule | None, Answer | None]:
        for rule in self._rules:
            if rule.applies(ctx):
                return rule, rule.take()
        return None, None

    def _latency(self, answer: Answer | None) -> float:
        if answer is not None and answer.latency is not None:
            return answer.latency
        return self.default_latency

    def _scripted_error(self, answer: Answer | None) -> LLMOutcome | None:
        if answer is None or answer.error is None:
            return None
        spec = answer.error
        headers = {**answer.headers, **spec.headers}
        return LLMOutcome(spec.status, spec.render(), headers, self._latency(answer))

    def _record(
        self,
        endpoint: str,
        body: Any,
        rule: Rule | None,
        outcome: LLMOutcome,
        now: float,
        provider: str | None = None,
        files: Mapping[str, bytes] | None = None,
    ) -> LLMOutcome:
        recorded = copy.deepcopy(body)
        self.calls.append(LLMCall(endpoint, recorded, rule, outcome, now, provider, files or {}))
        return outcome

    def _invalid(self, exc: OpenAIError) -> LLMOutcome:
        return LLMOutcome(exc.status, exc.body(), latency=self.default_latency)

    # -- endpoints -------------------------------------------------------------------------

    def chat(self, body: Any, *, now: float, provider: str = UPSTASH_PROVIDER) -> LLMOutcome:
        """`POST /v1/chat/completions`.

        `provider` is "upstash" (fixed models) or any other name ("openai", "custom": any model,
        answered by the same script).
        """
        provider = provider.lower()
        with self._lock:
            serial = self._next_serial()
            rule: Rule | None = None
            try:
                req = validate_chat(body, provider=provider, upstash_models=self.upstash_models)
                ctx = MatchContext(
                    endpoint=r.CHAT,
                    model=req.model,
                    provider=provider,
                    role=req.messages[-1]["role"],
                    texts=_texts(req.messages),
                    message_count=len(req.messages),
                    turn=sum(1 for m in req.messages if m["role"] == "user"),
                )
                rule, answer = self._find(ctx)
                outcome = self._scripted_error(answer)
                if outcome is None:
                    envelope = ChatEnvelope(
                        completion_id="chatcmpl-" + hex_id(self.seed, serial, r.CHAT),
                        created=int(now),
                        fingerprint="fp_" + hex_id("fingerprint", req.model, length=10),
                        engine_seed=self.seed,
                    )
                    response, chunks = render_chat(req, answer, envelope)
                    headers = dict(answer.headers) if answer is not None else {}
                    outcome = LLMOutcome(200, response, headers, self._latency(answer), chunks)
            except OpenAIError as exc:
                outcome = self._invalid(exc)
            return self._record(r.CHAT, body, rule, outcome, now, provider)

    def completion(self, body: Any, *, now: float, provider: str = UPSTASH_PROVIDER) -> LLMOutcome:
        """Legacy `POST /v1/completions`. A list of prompts is matched prompt by prompt."""
        provider = provider.lower()
        with self._lock:
            serial = self._next_serial()
            first_rule: Rule | None = None
            try:
                req = validate_completion(
                    body, provider=provider, upstash_models=self.upstash_models
                )
                answers: list[Answer | None] = []
                outcome = None
                for prompt in req.prompts:
                    ctx = MatchContext(
                        endpoint=r.COMPLETION,
                        model=req.model,
                        provider=provider,
                        role="user",
                        texts=_single_text(prompt),
                    )
                    rule, answer = self._find(ctx)
                    first_rule = first_rule or rule
                    outcome = self._scripted_error(answer)
                    if outcome is not None:
                        break
                    answers.append(answer)
                if outcome is None:
                    response, chunks = render_completion(
                        req,
                        answers,
                        completion_id="cmpl-" + hex_id(self.seed, serial, r.COMPLETION),
                        created=int(now),
                        engine_seed=self.seed,
                    )
                    scripted = next((a for a in answers if a is not None), None)
                    headers = dict(scripted.headers) if scripted is not None else {}
                    outcome = LLMOutcome(200, response, headers, self._latency(scripted), chunks)
            except OpenAIError as exc:
                outcome = self._invalid(exc)
            return self._record(r.COMPLETION, body, first_rule, outcome, now, provider)

    def embeddings(self, body: Any, *, now: float) -> LLMOutcome:
        """`POST /v1/embeddings`: deterministic unit vectors.

        Of `embedding_dim` floats, or `dimensions` from the request; scripts can only fail or
        delay it.
        """
        with self._lock:
            self._next_serial()
            rule: Rule | None = None
            try:
                req = validate_embeddings(body)
                ctx = MatchContext(
                    endpoint=r.EMBEDDINGS,
                    model=req.model,
                    texts=_single_text("\n".join(req.inputs)),
                )
                rule, answer = self._find(ctx)
                outcome = self._scripted_error(answer)
                if outcome is None:
                    response = render_embeddings(req, self.embedding_dim)
                    headers = dict(answer.headers) if answer is not None else {}
                    outcome = LLMOutcome(200, response, headers, self._latency(answer))
            except OpenAIError as exc:
                outcome = self._invalid(exc)
            return self._record(r.EMBEDDINGS, body, rule, outcome, now)

    def transcription(
        self,
        fields: FormFields,
        file: bytes | None,
        *,
        now: float,
        translate: bool = False,
        filename: str | None = None,
    ) -> LLMOutcome:
        """`POST /v1/audio/transcriptions` (or `translations`).

        A multipart form `fields` plus the uploaded `file`. Rules for the "transcription"/
        "translation" endpoint may script the text; `contains`/`regex` test the `prompt` field.
        """
        endpoint = r.TRANSLATION if translate else r.TRANSCRIPTION
        with self._lock:
            self._next_serial()
            rule: Rule | None = None
            try:
                req = validate_audio(fields, file, filename=filename, translate=translate)
                ctx = MatchContext(
                    endpoint=endpoint, model=req.model, texts=_single_text(req.prompt)
                )
                rule, answer = self._find(ctx)
                outcome = self._scripted_error(answer)
                if outcome is None:
                    text = answer.content if answer is not None else None
                    if text is None:
                        text = default_transcript(self.seed, req.model, req.task, req.file_sha256)
                    response, raw, content_type = render_audio(req, text)
                    headers = dict(answer.headers) if answer is not None else {}
                    outcome = LLMOutcome(
                        200, response, headers, self._latency(answer), None, raw, content_type
                    )
            except OpenAIError as exc:
                outcome = self._invalid(exc)
            files = {"file": file} if file is not None else {}
            return self._record(endpoint, dict(fields), rule, outcome, now, files=files)

    def image(
        self,
        body: Any,
        *,
        now: float,
        edit: bool = False,
        image: bytes | None = None,
        mask: bytes | None = None,
        base_url: str = "",
    ) -> LLMOutcome:
        """`POST /v1/images/generations` (JSON body) or `/v1/images/edits`.

        For an edit (`edit=True`): form fields in `body`, the uploaded `image` and optional `mask`.
        `url` answers point to `{base_url}/images/<id>.png`; serve those bytes with `image_bytes`.
        """
        endpoint = r.IMAGE_EDIT if edit else r.IMAGE
        with self._lock:
            self._next_serial()
            rule: Rule | None = None
            try:
                req = validate_image(body, edit=edit, image=image, mask=mask, form=edit)
                ctx = MatchContext(
                    endpoint=endpoint, model=req.model, texts=_single_text(req.prompt)
                )
                rule, answer = self._find(ctx)
                outcome = self._scripted_error(answer)
                if outcome is None:
                    response = render_images(
                        req,
                        self._images,
                        created=int(now),
                        engine_seed=self.seed,
                        base_url=base_url,
                    )
                    headers = dict(answer.headers) if answer is not None else {}
                    outcome = LLMOutcome(200, response, headers, self._latency(answer))
            except OpenAIError as exc:
                outcome = self._invalid(exc)
            files = {k: v for k, v in (("image", image), ("mask", mask)) if v is not None}
            return self._record(endpoint, body, rule, outcome, now, files=files)

    def image_bytes(self, image_id: str) -> bytes | None:
        """The PNG behind an `/images/<id>.png` url (the id with or without `.png`)."""
        with self._lock:
            return self._images.get(image_id)

    def _all_models(self) -> dict[str, tuple[int, str]]:
        return {**self.upstash_models, **OTHER_MODELS}

    def models(self, *, now: float) -> LLMOutcome:
        """`GET /v1/models`: the Upstash models first, then the other endpoints' models."""
        with self._lock:
            outcome = LLMOutcome(200, models_list(self._all_models()), latency=self.default_latency)
            return self._record("models", None, None, outcome, now)

    def model(self, model_id: str, *, now: float) -> LLMOutcome:
        """`GET /v1/models/{model}`; 404 with OpenAI's body for a model it does not list."""
        with self._lock:
            known = self._all_models().get(model_id)
            if known is None:
                exc = OpenAIError(
                    f"The model '{model_id}' does not exist",
                    status=404,
                    param="model",
                    code="model_not_found",
                )
                outcome = self._invalid(exc)
            else:
                outcome = LLMOutcome(
                    200, model_entry(model_id, *known), latency=self.default_latency
                )
            return self._record("models", {"model": model_id}, None, outcome, now)
