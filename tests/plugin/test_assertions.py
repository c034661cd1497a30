"""Assertion helpers and what their failures say."""

from __future__ import annotations

import re

import pytest
from pytest_qstash import QStashHarness
from qstash import QStash
from qstash_emulator.core.state import Delivered


def test_assert_delivered_failure_shows_what_was_delivered_instead(
    qstash: QStashHarness, qstash_client: QStash
) -> None:
    hook = qstash.capture("orders")
    qstash_client.message.publish_json(url=hook.url, body={"id": 2})
    qstash_client.message.publish_json(url=qstash.capture("other").url, body={"id": 1})
    qstash_client.message.publish_json(url=hook.url, body={"id": 1}, delay="10m")
    with pytest.raises(AssertionError) as info:
        qstash.assert_delivered(hook, json={"id": 1})
    text = str(info.value)
    assert text.startswith("assert_delivered: expected at least one delivery, found 0")
    assert f"url = '{hook.url}'" in text and "json = {'id': 1}" in text
    assert "delivered instead (2):" in text
    assert "differs: json {'id': 2}" in text  # right URL, wrong body
    assert "differs: url 'http://127.0.0.1:" in text  # right body, wrong URL
    assert "not delivered yet (1):" in text and "due t=+600s" in text
    assert "advance(...)" in text  # the hint for a virtual clock


def test_times_is_exact(qstash: QStashHarness, qstash_client: QStash) -> None:
    hook = qstash.capture()
    for i in range(3):
        qstash_client.message.publish(url=hook.url, body=str(i))
    qstash.assert_delivered(hook, times=3)
    with pytest.raises(AssertionError, match="expected exactly 2 deliveries, found 3"):
        qstash.assert_delivered(hook, times=2)
    qstash.assert_delivered(hook, body="1", times=1)


def test_assert_not_delivered_failure(qstash: QStashHarness, qstash_client: QStash) -> None:
    hook = qstash.capture()
    qstash_client.message.publish(url=hook.url, body="oops")
    qstash.assert_not_delivered(hook, body="fine")
    with pytest.raises(AssertionError) as info:
        qstash.assert_not_delivered(hook)
    assert "assert_not_delivered: expected none, found 1" in str(info.value)
    assert "matched 1:" in str(info.value)


def test_nothing_delivered_message(qstash: QStashHarness) -> None:
    with pytest.raises(AssertionError, match="nothing was delivered in this test"):
        qstash.assert_delivered(re.compile(r"/hook$"))


def test_invalid_signature_fails_the_assertion(
    qstash: QStashHarness, qstash_client: QStash
) -> None:
    hook = qstash.capture()
    qstash_client.message.publish(url=hook.url, body="x")
    qstash.settle()
    # Tamper with the recorded delivery, as if the emulator had signed the wrong body.
    record: Delivered = qstash.emulator.engine.delivered[0]
    forged = Delivered(
        record.message, record.url, record.method, record.headers, b"y", record.time, 0,
        record.response,
    )  # fmt: skip
    qstash.emulator.engine.delivered.append(forged)
    with pytest.raises(AssertionError, match="no valid signature"):
        qstash.assert_delivered(hook, body="y")
    [d] = qstash.assert_delivered(hook, body="y", signed=False)
    assert not d.signed and "body hash" in (d.signature_error or "")


def test_filters_reject_unknown_names(qstash: QStashHarness) -> None:
    with pytest.raises(TypeError):
        qstash.deliveries(colour="red")


def test_failure_lists_errors_inside_the_emulator(qstash: QStashHarness) -> None:
    async def broken() -> None:
        raise ValueError("boom")

    emu = qstash.emulator
    emu.call(_schedule(emu, broken))
    with pytest.raises(AssertionError, match=r"errors inside the emulator(.|\n)*boom"):
        qstash.assert_delivered("http://nowhere/")
    emu.scheduler.errors.clear()  # this test's own doing: keep the teardown warning away


async def _schedule(emu: object, work: object) -> None:
    emu.scheduler.call_soon(work)  # type: ignore[attr-defined]
    await emu.scheduler.settle()  # type: ignore[attr-defined]


# -- LLM ------------------------------------------------------------------------------------


def _has_llm() -> bool:
    from qstash_emulator import Emulator

    return hasattr(Emulator, "llm")


needs_llm = pytest.mark.skipif(not _has_llm(), reason="the LLM engine is not in Emulator yet")


@needs_llm
def test_llm_assertions(qstash: QStashHarness, qstash_llm: object) -> None:
    import httpx

    qstash_llm.reply(contains="weather", content="Sunny.")  # type: ignore[attr-defined]
    response = httpx.post(
        f"{qstash.url}/llm/v1/chat/completions",
        headers={"Authorization": f"Bearer {qstash.token}"},
        json={"model": "meta-llama/Meta-Llama-3-8B-Instruct",
              "messages": [{"role": "user", "content": "weather in Oslo?"}]},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Sunny."
    [call] = qstash.assert_llm_called(contains="Oslo", times=1)
    assert qstash.llm_calls(model="meta-llama/Meta-Llama-3-8B-Instruct") == [call]
    qstash.assert_llm_not_called(contains="Paris")
    with pytest.raises(AssertionError) as info:
        qstash.assert_llm_called(contains="Paris")
    assert "calls instead (1):" in str(info.value) and "prompt lacks 'Paris'" in str(info.value)


@needs_llm
def test_llm_calls_reset_between_tests(qstash: QStashHarness) -> None:
    assert qstash.llm_calls() == []
    with pytest.raises(AssertionError, match="no LLM call was made"):
        qstash.assert_llm_called()


def test_body_given_as_a_dict_compares_as_json(
    qstash: QStashHarness, qstash_client: QStash
) -> None:
    hook = qstash.capture()
    qstash_client.message.publish(url=hook.url, body='{"b": 2,  "a": 1}')
    qstash.assert_delivered(hook, body={"a": 1, "b": 2})
    with pytest.raises(AssertionError, match=r"differs: json \{'b': 2, 'a': 1\}"):
        qstash.assert_delivered(hook, body={"a": 1})
