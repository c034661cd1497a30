"""The image workflow end to end: user -> app -> QStash -> image API -> run -> reviewer ->
notify -> run. Only the `pytest_qstash` plugin's fixtures stand in for the outside world:
`qstash` (the emulator, its virtual clock, workflow runs, notify) and `qstash_llm` (the image
API's scripted answers). Nothing leaves 127.0.0.1; a week of waiting takes one `advance`."""

from __future__ import annotations

from pytest_qstash import QStashHarness
from qstash_emulator.llm import LLMEngine

from .conftest import LiveApp

OPENAI_IMAGES = "https://api.openai.com/v1/images/generations"


def test_an_approved_image_is_published(qstash: QStashHarness, live_app: LiveApp) -> None:
    run_id = live_app.generate("a lighthouse at dawn, watercolor")
    qstash.advance("1s")

    # The workflow called the image API through QStash, with the app's key...
    [call] = qstash.assert_delivered(OPENAI_IMAGES, times=1, status=200)
    assert call.header("Authorization") == "Bearer sk-test-not-a-real-key"
    assert call.json()["prompt"] == "a lighthouse at dawn, watercolor"
    qstash.assert_llm_called(endpoint="image", contains="lighthouse", times=1)
    # ...kept the draft and is cooling down: nobody can approve yet.
    draft = live_app.image(run_id)
    assert draft["status"] == "awaiting-approval"
    assert draft["url"].startswith(f"{qstash.url}/__llm/images/")
    assert live_app.approve(run_id).status_code == 409
    assert qstash.waiters(f"approve-{run_id}") == []

    qstash.advance("1h")  # the cool-down ends; the run waits for a reviewer
    assert qstash.workflow_run(run_id).waiting_for == [f"approve-{run_id}"]
    assert live_app.approve(run_id).json() == {"notified": 1}
    qstash.advance("1s")

    run = qstash.assert_workflow_completed(
        run_id,
        result="published",
        steps=["generate-image", "store-draft", "cool-down", "approval", "decide"],
    )
    assert run.step("approval").result == {"timeout": False, "event_data": {"approved": True}}
    assert live_app.image(run_id)["status"] == "published"


def test_a_rejected_image_is_not_published(qstash: QStashHarness, live_app: LiveApp) -> None:
    run_id = live_app.generate("a storm over the sea")
    qstash.advance("1h")
    [answer] = qstash.notify(f"approve-{run_id}", {"approved": False})  # the reviewer's event
    assert answer["messageId"]
    qstash.advance("1s")

    qstash.assert_workflow_completed(run_id, result="rejected")
    assert live_app.image(run_id)["status"] == "rejected"


def test_an_image_nobody_reviews_expires_after_a_week(
    qstash: QStashHarness, live_app: LiveApp
) -> None:
    run_id = live_app.generate("a quiet harbour")
    qstash.advance("1h1s")
    qstash.advance("7d")  # the approval wait times out

    run = qstash.assert_workflow_completed(run_id, result="expired")
    assert run.step("approval").result == {"timeout": True, "event_data": None}
    assert live_app.image(run_id)["status"] == "expired"


def test_a_transient_image_api_error_is_retried(
    qstash: QStashHarness, qstash_llm: LLMEngine, live_app: LiveApp
) -> None:
    qstash_llm.reply(endpoint="image", error=503, times=1)
    run_id = live_app.generate("a tiny robot")
    qstash.advance("13s")  # the call's first retry waits e^2.5 ≈ 12.2s

    [first, retry] = qstash.assert_delivered(OPENAI_IMAGES, times=2)
    assert (first.status, retry.status) == (503, 200)
    assert live_app.image(run_id)["status"] == "awaiting-approval"


def test_an_image_api_refusal_runs_the_failure_function(
    qstash: QStashHarness, qstash_llm: LLMEngine, live_app: LiveApp
) -> None:
    qstash_llm.reply(endpoint="image", error=400)
    run_id = live_app.generate("something the API refuses")
    qstash.advance("3m")  # the call and its two retries (e^2.5 s, then e^5 s later)

    qstash.assert_delivered(OPENAI_IMAGES, status=400, times=3)
    run = qstash.assert_workflow_failed(run_id, failure_function=True)
    assert run.failure is not None and run.failure["fail_status"] == 489
    image = live_app.image(run_id)
    assert image["status"] == "failed"
    assert "image API answered 400" in image["error"]
