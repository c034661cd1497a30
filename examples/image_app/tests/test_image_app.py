"""The app's flow end to end: user -> app -> QStash -> image/chat API -> QStash -> app callback.

Only the `pytest_qstash` plugin's fixtures stand in for the outside world: `qstash` (the
emulator, its clock and delivery assertions), `qstash_llm` (the scripted answers of the image
and chat APIs), `qstash_receiver` and `qstash_fresh`. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import base64
import hashlib
import time

import httpx
import jwt
import pytest
from pytest_qstash import QStashHarness
from qstash import Receiver
from qstash_emulator.llm import LLMEngine, LLMErrorSpec

from .conftest import FAKE_OPENAI_KEY, LiveApp, ServeApp

OPENAI_IMAGES = "https://api.openai.com/v1/images/generations"
OPENAI_CHAT = "https://api.openai.com/v1/chat/completions"
PNG = b"\x89PNG\r\n\x1a\n"


def callback_url(app: LiveApp, path: str, submission: str) -> str:
    return f"{app.url}{path}?id={submission}"


# -- images ---------------------------------------------------------------------------------
def test_image_is_generated_through_qstash_and_reported(
    qstash: QStashHarness, qstash_llm: LLMEngine, live_app: LiveApp
) -> None:
    submission = live_app.generate_image("a lighthouse at dawn, watercolor")
    qstash.settle()  # the publish, the image API call and the callback all happen now

    # QStash called the image API with the forwarded key and the app's request...
    [api_call] = qstash.assert_delivered(
        OPENAI_IMAGES,
        headers={"Authorization": f"Bearer {FAKE_OPENAI_KEY}"},
        json={"model": "dall-e-2", "prompt": "a lighthouse at dawn, watercolor", "n": 1},
        times=1,
    )
    assert api_call.status == 200
    qstash.assert_llm_called(endpoint="image", contains="lighthouse", times=1)
    # ...then the app's callback, signed, with the API's answer.
    qstash.assert_callback(
        callback_url(live_app, "/image-callback", submission),
        source_message_id=api_call.message_id,
        source_status=200,
        times=1,
    )

    report = live_app.image_status(submission)
    assert report["ready"] is True and report["status"] == "ready"
    assert report["attempts"] == 1 and "error" not in report
    assert report["url"].startswith(f"{qstash.url}/__llm/images/")
    image = httpx.get(report["url"])  # the image API's URL, served by the emulator
    assert image.status_code == 200 and image.content.startswith(PNG)


def test_image_as_base64(qstash: QStashHarness, live_app: LiveApp) -> None:
    submission = live_app.generate_image(
        "a red bicycle", size="256x256", response_format="b64_json"
    )
    qstash.settle()
    [api_call] = qstash.assert_delivered(OPENAI_IMAGES, times=1)
    assert api_call.json()["response_format"] == "b64_json"
    report = live_app.image_status(submission)
    assert report["ready"] is True and "url" not in report
    png = base64.b64decode(report["b64_json"])
    assert png.startswith(PNG)
    assert png[16:24] == (256).to_bytes(4, "big") * 2  # IHDR: 256x256, as asked


def test_image_api_served_by_the_emulator_as_a_custom_provider(
    qstash: QStashHarness, serve_app: ServeApp
) -> None:
    # The image API as any OpenAI-compatible base URL: the emulator's own /v1 endpoints, which
    # take the QStash token as API key. QStash delivers to it over real HTTP.
    app = serve_app(IMAGE_API_BASE_URL=qstash.url, IMAGE_API_KEY=qstash.token)
    submission = app.generate_image("a tiny robot")
    qstash.settle()
    qstash.assert_delivered(f"{qstash.url}/v1/images/generations", status=200, times=1)
    qstash.assert_llm_called(endpoint="image", contains="tiny robot", times=1)
    qstash.assert_callback(callback_url(app, "/image-callback", submission), source_status=200)
    report = app.image_status(submission)
    assert report["ready"] is True and report["url"].startswith(qstash.url)


def test_image_api_failure_is_retried_by_qstash(
    qstash: QStashHarness, qstash_llm: LLMEngine, live_app: LiveApp
) -> None:
    qstash_llm.reply(endpoint="image", error=503, times=1)
    submission = live_app.generate_image("a storm over the sea")
    qstash.settle()

    # The first attempt failed: QStash reports it to the callback, and will retry.
    qstash.assert_callback(
        callback_url(live_app, "/image-callback", submission), source_status=503, times=1
    )
    report = live_app.image_status(submission)
    assert report["ready"] is False and report["status"] == "pending"
    assert report["error"].startswith("503")

    qstash.advance("13s")  # the first retry waits e^2.5 ≈ 12.2s
    [first, retry] = qstash.assert_delivered(OPENAI_IMAGES, times=2)
    assert (first.status, retry.status) == (503, 200) and retry.retried == 1
    qstash.assert_callback(
        callback_url(live_app, "/image-callback", submission), source_status=200, times=1
    )
    report = live_app.image_status(submission)
    assert report["ready"] is True and report["attempts"] == 2 and "error" not in report


def test_image_api_refusal_fails_the_submission_after_the_last_retry(
    qstash: QStashHarness, qstash_llm: LLMEngine, live_app: LiveApp
) -> None:
    qstash_llm.reply(endpoint="image", error=400)
    submission = live_app.generate_image("something the API refuses")
    qstash.run_until_idle()  # every retry, on the virtual clock
    qstash.assert_delivered(OPENAI_IMAGES, status=400, times=4)  # 1 attempt + 3 retries
    qstash.assert_callback(
        callback_url(live_app, "/image-callback", submission), source_status=400, times=4
    )
    report = live_app.image_status(submission)
    assert report["status"] == "failed" and report["ready"] is False
    assert report["attempts"] == 4 and report["error"].startswith("400")


def test_a_prompt_is_required(qstash: QStashHarness, live_app: LiveApp) -> None:
    response = live_app.http.post("/generate-image", json={"prompt": " "})
    assert response.status_code == 400
    response = live_app.http.post("/generate-image", content=b"not json")
    assert response.status_code == 400
    qstash.assert_not_delivered()


def test_unknown_submission(live_app: LiveApp) -> None:
    response = live_app.http.get("/get-image-is-ready", params={"id": "nope"})
    assert response.status_code == 404


# -- signatures -----------------------------------------------------------------------------
def _forge(key: str, url: str, body: str) -> str:
    """A QStash-shaped signature made with `key`."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(body.encode()).digest())
    now = int(time.time())
    claims = {
        "iss": "Upstash",
        "sub": url,
        "exp": now + 300,
        "nbf": now,
        "iat": now,
        "jti": "jwt_forged",
        "body": digest.decode().rstrip("="),
    }
    return jwt.encode(claims, key, algorithm="HS256")


def test_forged_callbacks_are_rejected(
    qstash: QStashHarness, qstash_llm: LLMEngine, qstash_receiver: Receiver, live_app: LiveApp
) -> None:
    qstash_llm.reply(endpoint="image", error=503, times=1)  # pending until QStash retries
    submission = live_app.generate_image("a cat")
    qstash.settle()
    url = callback_url(live_app, "/image-callback", submission)
    [real] = qstash.assert_callback(url, source_status=503)
    signature = real.header("Upstash-Signature")
    assert signature is not None
    qstash_receiver.verify(signature=signature, body=real.text, url=url)  # the real one is fine

    # What an attacker would post: an answer pointing at their own image.
    fake_answer = base64.b64encode(b'{"data": [{"url": "https://evil.example/x.png"}]}').decode()
    forged = f'{{"status": 200, "body": "{fake_answer}", "retried": 0, "maxRetries": 3}}'
    wrong_key = _forge("sig_NotTheSigningKeyOfThisUser00", url, forged)
    other_url = callback_url(live_app, "/image-callback", "0" * 32)
    attempts = [  # (what, where, body, headers)
        ("no signature", url, forged, {}),
        ("garbage signature", url, forged, {"Upstash-Signature": "not-a-jwt"}),
        ("signed with another key", url, forged, {"Upstash-Signature": wrong_key}),
        ("real signature, other body", url, forged, {"Upstash-Signature": signature}),
        (
            "real signature and body, other URL",
            other_url,
            real.text,
            {"Upstash-Signature": signature},
        ),
    ]
    for what, target, body, headers in attempts:
        response = live_app.http.post(target, content=body.encode(), headers=headers)
        assert response.status_code == 401, what

    report = live_app.image_status(submission)  # none of them got through
    assert report["status"] == "pending" and report["attempts"] == 1 and "url" not in report
    qstash.advance("13s")  # QStash's retry brings the real image
    assert live_app.image_status(submission)["url"].startswith(qstash.url)


# -- production URLs ------------------------------------------------------------------------
def test_behind_a_public_url(qstash_fresh: QStashHarness, serve_app: ServeApp) -> None:
    # In production the app publishes callbacks to its public URL; locally a rewrite delivers
    # them here while the signature keeps the public URL, which the app verifies against.
    # (`qstash_fresh`: a rewrite is not undone by the shared server's per-test reset.)
    public = "https://images.myapp.example"
    app = serve_app(OPENAI_API_KEY=FAKE_OPENAI_KEY, APP_PUBLIC_URL=public)
    qstash_fresh.emulator.delivery.rewrite(public, app.url)
    submission = app.generate_image("a paper boat")
    qstash_fresh.settle()
    [callback] = qstash_fresh.assert_callback(f"{public}/image-callback?id={submission}")
    assert callback.status == 200
    assert callback.claims is not None and callback.claims["sub"].startswith(public)
    assert app.image_status(submission)["ready"] is True


# -- chat -----------------------------------------------------------------------------------
def test_chat_completion_through_qstash(
    qstash: QStashHarness, qstash_llm: LLMEngine, live_app: LiveApp
) -> None:
    qstash_llm.reply(contains="capital of Turkey", content="Ankara.")
    submission = live_app.chat("What is the capital of Turkey?", system="Answer in one word.")
    qstash.settle()

    [api_call] = qstash.assert_delivered(
        OPENAI_CHAT, headers={"Authorization": f"Bearer {FAKE_OPENAI_KEY}"}, times=1
    )
    assert api_call.json() == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": "What is the capital of Turkey?"},
        ],
    }
    qstash.assert_llm_called(endpoint="chat", provider="openai", contains="Turkey", times=1)
    qstash.assert_callback(
        callback_url(live_app, "/chat-callback", submission),
        source_message_id=api_call.message_id,
        source_status=200,
    )
    report = live_app.chat_status(submission)
    assert report["ready"] is True
    assert report["content"] == "Ankara."
    assert report["model"] == "gpt-4o-mini" and report["usage"]["total_tokens"] > 0


def test_chat_rate_limit_is_retried_when_it_resets(
    qstash: QStashHarness, qstash_llm: LLMEngine, live_app: LiveApp
) -> None:
    qstash_llm.reply(error=LLMErrorSpec.rate_limited(reset_requests="20s"), times=1)
    qstash_llm.reply(content="Sure: 1, 2, 3.")
    submission = live_app.chat("Count to three.")
    qstash.settle()
    report = live_app.chat_status(submission)
    assert report["status"] == "pending" and report["error"].startswith("429")

    qstash.advance("19s")
    assert live_app.chat_status(submission)["ready"] is False  # not before the reset
    qstash.advance("1s")
    report = live_app.chat_status(submission)
    assert report["ready"] is True and report["content"] == "Sure: 1, 2, 3."
    qstash.assert_delivered(OPENAI_CHAT, times=2)


def test_chat_with_a_custom_provider(
    qstash: QStashHarness, qstash_llm: LLMEngine, serve_app: ServeApp
) -> None:
    # Any OpenAI-compatible base URL; here the emulator's own /v1 (a `custom(...)` provider).
    qstash_llm.reply(contains="haiku", content="Old pond, a frog jumps.")
    app = serve_app(CHAT_API_BASE_URL=qstash.url, CHAT_API_KEY=qstash.token, CHAT_MODEL="any")
    submission = app.chat("Write a haiku.")
    qstash.settle()
    qstash.assert_delivered(f"{qstash.url}/v1/chat/completions", status=200, times=1)
    report = app.chat_status(submission)
    assert report["ready"] is True and report["content"] == "Old pond, a frog jumps."


@pytest.mark.parametrize("path", ["/chat-callback", "/image-callback"])
def test_callbacks_need_a_signature(live_app: LiveApp, path: str) -> None:
    response = live_app.http.post(path, params={"id": "x"}, json={"status": 200, "body": ""})
    assert response.status_code == 401
