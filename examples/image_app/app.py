"""Asynchronous AI image generation through QStash, the flow of the article "How To Use
Artificial Intelligence APIs At Scale" — plus a chat-completion variant.

- `POST /generate-image` `{"prompt": ...}` publishes the image request to the image API
  (`{IMAGE_API_BASE_URL}/v1/images/generations`) through QStash, with `Upstash-Callback`
  pointing back at `/image-callback`, and answers 202 with a submission id at once.
- QStash calls the image API (retrying on failure) and sends its answer to `/image-callback`,
  which verifies `Upstash-Signature` with the official `qstash.Receiver`, decodes the answer
  (base64 in the callback's `body`) and stores the image URL or its base64 data.
- `GET /get-image-is-ready?id=...` reports the submission: pending, ready (with the image) or
  failed (with the provider's error).

The chat variant is the same flow for a chat completion: `POST /chat` publishes to an LLM
provider's chat completions URL (the SDK's `api={"name": "llm", ...}`), `/chat-callback`
stores the answer, `GET /get-chat-is-ready?id=...` reports it.

Configuration comes from the environment, as in production:

    QSTASH_URL, QSTASH_TOKEN, QSTASH_CURRENT_SIGNING_KEY, QSTASH_NEXT_SIGNING_KEY
    IMAGE_API_BASE_URL (https://api.openai.com), IMAGE_API_KEY, IMAGE_MODEL (dall-e-2)
    CHAT_API_BASE_URL (https://api.openai.com), CHAT_API_KEY, CHAT_MODEL (gpt-4o-mini)
    OPENAI_API_KEY      the default of both keys
    APP_PUBLIC_URL      the app's public origin, for callback URLs and signature checks
                        (default: the origin the request came in on)

Run it with `python examples/image_app/app.py --port 3000` (see README.md).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from qstash import AsyncQStash, Receiver
from qstash.chat import custom
from qstash.errors import QStashError, SignatureError
from qstash.message import PublishResponse

OPENAI_BASE_URL = "https://api.openai.com"
Kind = Literal["image", "chat"]


@dataclass(frozen=True)
class Settings:
    qstash_token: str
    current_signing_key: str
    next_signing_key: str
    qstash_url: str = "https://qstash.upstash.io"
    image_api_base_url: str = OPENAI_BASE_URL
    image_api_key: str = ""
    image_model: str = "dall-e-2"
    chat_api_base_url: str = OPENAI_BASE_URL
    chat_api_key: str = ""
    chat_model: str = "gpt-4o-mini"
    public_url: str | None = None
    retries: int = 3

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def required(name: str) -> str:
            value = env.get(name)
            if not value:
                raise RuntimeError(f"{name} is not set")
            return value

        def base(name: str) -> str:
            return (env.get(name) or OPENAI_BASE_URL).rstrip("/")

        default_key = env.get("OPENAI_API_KEY", "")
        return cls(
            qstash_token=required("QSTASH_TOKEN"),
            current_signing_key=required("QSTASH_CURRENT_SIGNING_KEY"),
            next_signing_key=required("QSTASH_NEXT_SIGNING_KEY"),
            qstash_url=env.get("QSTASH_URL") or cls.qstash_url,
            image_api_base_url=base("IMAGE_API_BASE_URL"),
            image_api_key=env.get("IMAGE_API_KEY") or default_key,
            image_model=env.get("IMAGE_MODEL") or cls.image_model,
            chat_api_base_url=base("CHAT_API_BASE_URL"),
            chat_api_key=env.get("CHAT_API_KEY") or default_key,
            chat_model=env.get("CHAT_MODEL") or cls.chat_model,
            public_url=(env.get("APP_PUBLIC_URL") or "").rstrip("/") or None,
        )


@dataclass
class Submission:
    """One request for an image or a completion, and what became of it."""

    id: str
    kind: Kind
    status: Literal["pending", "ready", "failed"] = "pending"
    message_id: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    attempts: int = 0

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "ready": self.status == "ready",
            "status": self.status,
            "attempts": self.attempts,
        }
        if self.error is not None:
            out["error"] = self.error
        return out | self.result


class Store:
    """In-memory storage by submission id (a real app would use Redis or a database)."""

    def __init__(self) -> None:
        self._items: dict[str, Submission] = {}

    def new(self, kind: Kind) -> Submission:
        item = Submission(uuid.uuid4().hex, kind)
        self._items[item.id] = item
        return item

    def get(self, submission_id: str | None, kind: Kind) -> Submission | None:
        item = self._items.get(submission_id or "")
        return item if item is not None and item.kind == kind else None

    def discard(self, submission_id: str) -> None:
        self._items.pop(submission_id, None)


SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
QSTASH = web.AppKey("qstash", AsyncQStash)
RECEIVER = web.AppKey("receiver", Receiver)


# -- helpers ------------------------------------------------------------------------------------
def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "expected a JSON object"}), content_type="application/json"
        )
    return data


def _public_origin(request: web.Request) -> str:
    """Where QStash reaches this app: the configured public URL, else the request's origin."""
    configured = request.app[SETTINGS].public_url
    return configured or f"{request.scheme}://{request.host}"


async def _publish(
    request: web.Request, kind: Kind, callback_path: str, **publish: Any
) -> web.Response:
    """Create a submission, publish its request with a callback to it, answer 202."""
    store = request.app[STORE]
    item = store.new(kind)  # before publishing: the callback may come back at once
    callback = f"{_public_origin(request)}{callback_path}?id={item.id}"
    try:
        result = await request.app[QSTASH].message.publish_json(
            callback=callback, retries=request.app[SETTINGS].retries, **publish
        )
    except QStashError as exc:
        store.discard(item.id)
        return _error(502, f"QStash refused the request: {exc}")
    assert isinstance(result, PublishResponse)  # a URL destination: one message
    item.message_id = result.message_id
    return web.json_response({"id": item.id, "messageId": result.message_id}, status=202)


async def _verified_callback(request: web.Request) -> dict[str, Any]:
    """The callback's JSON body, once its QStash signature checks out (401 otherwise)."""
    signature = request.headers.get("Upstash-Signature")
    if not signature:
        raise web.HTTPUnauthorized(text="missing Upstash-Signature")
    body = await request.text()
    # QStash signs the URL it was given: the public one, even behind a proxy.
    url = _public_origin(request) + request.raw_path
    try:
        request.app[RECEIVER].verify(signature=signature, body=body, url=url)
    except SignatureError as exc:
        raise web.HTTPUnauthorized(text=f"invalid signature: {exc}") from None
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="the callback body is not a JSON object")
    return data


def _provider_answer(callback: Mapping[str, Any]) -> tuple[int, Any]:
    """(status, parsed JSON) of the provider's answer carried by a QStash callback."""
    status = callback.get("status")
    try:
        raw = base64.b64decode(str(callback.get("body") or ""), validate=True)
        answer = json.loads(raw) if raw.strip() else None
    except (binascii.Error, ValueError):
        answer = None
    return (status if isinstance(status, int) else 0), answer


def _failure_text(status: int, answer: Any, callback: Mapping[str, Any]) -> str:
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        message = answer["error"].get("message")
        if message:
            return f"{status}: {message}"
    return f"{status}: {callback.get('error') or 'no usable answer'}"


async def _callback(request: web.Request, kind: Kind) -> web.Response:
    callback = await _verified_callback(request)
    item = request.app[STORE].get(request.query.get("id"), kind)
    if item is None:
        return _error(404, "unknown submission")
    if item.status == "ready":  # a late duplicate: the answer is already stored
        return web.json_response({"ok": True})
    item.attempts += 1
    status, answer = _provider_answer(callback)
    result = _image_result(answer) if kind == "image" else _chat_result(answer)
    if 200 <= status < 300 and result is not None:
        item.status, item.result, item.error = "ready", result, None
    else:
        item.error = _failure_text(status, answer, callback)
        # QStash calls back after every attempt; the last one decides.
        retried, most = callback.get("retried", 0), callback.get("maxRetries", 0)
        if isinstance(retried, int) and isinstance(most, int) and retried >= most:
            item.status = "failed"
    return web.json_response({"ok": True})


def _image_result(answer: Any) -> dict[str, Any] | None:
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        return None
    image = data[0]
    result = {key: image[key] for key in ("url", "b64_json", "revised_prompt") if key in image}
    return result if "url" in result or "b64_json" in result else None


def _chat_result(answer: Any) -> dict[str, Any] | None:
    choices = answer.get("choices") if isinstance(answer, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        return None
    return {"content": content, "model": answer.get("model"), "usage": answer.get("usage")}


def _report(request: web.Request, kind: Kind) -> web.Response:
    item = request.app[STORE].get(request.query.get("id"), kind)
    if item is None:
        return _error(404, "unknown submission")
    return web.json_response(item.report())


# -- routes -------------------------------------------------------------------------------------
routes = web.RouteTableDef()


@routes.post("/generate-image")
async def generate_image(request: web.Request) -> web.Response:
    data = await _json_object(request)
    prompt = data.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return _error(400, "prompt is required")
    settings = request.app[SETTINGS]
    body: dict[str, Any] = {"model": settings.image_model, "prompt": prompt, "n": 1}
    for name in ("size", "response_format"):
        if isinstance(data.get(name), str):
            body[name] = data[name]
    return await _publish(
        request,
        "image",
        "/image-callback",
        url=f"{settings.image_api_base_url}/v1/images/generations",
        body=body,
        headers={"Authorization": f"Bearer {settings.image_api_key}"},
    )


@routes.post("/image-callback")
async def image_callback(request: web.Request) -> web.Response:
    return await _callback(request, "image")


@routes.get("/get-image-is-ready")
async def get_image_is_ready(request: web.Request) -> web.Response:
    return _report(request, "image")


@routes.post("/chat")
async def chat(request: web.Request) -> web.Response:
    data = await _json_object(request)
    prompt = data.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return _error(400, "prompt is required")
    settings = request.app[SETTINGS]
    messages = [{"role": "user", "content": prompt}]
    if isinstance(data.get("system"), str):
        messages.insert(0, {"role": "system", "content": data["system"]})
    provider = custom(settings.chat_api_base_url, settings.chat_api_key)
    return await _publish(
        request,
        "chat",
        "/chat-callback",
        api={"name": "llm", "provider": provider},
        body={"model": settings.chat_model, "messages": messages},
    )


@routes.post("/chat-callback")
async def chat_callback(request: web.Request) -> web.Response:
    return await _callback(request, "chat")


@routes.get("/get-chat-is-ready")
async def get_chat_is_ready(request: web.Request) -> web.Response:
    return _report(request, "chat")


# -- the app ------------------------------------------------------------------------------------
async def _qstash_client(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    client = AsyncQStash(settings.qstash_token, base_url=settings.qstash_url)
    app[QSTASH] = client
    yield
    # The SDK has no close(): close its httpx client, or its connections outlive the loop.
    await client.http._client.aclose()


def create_app(settings: Settings | None = None) -> web.Application:
    """The app, configured from the environment unless `settings` are given."""
    settings = settings or Settings.from_env()
    app = web.Application()
    app[SETTINGS] = settings
    app[STORE] = Store()
    app[RECEIVER] = Receiver(settings.current_signing_key, settings.next_signing_key)
    app.cleanup_ctx.append(_qstash_client)
    app.add_routes(routes)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="AI image generation through QStash")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args(argv)
    web.run_app(create_app(), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
