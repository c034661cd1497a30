"""The fixtures as an app's test suite uses them (the plugin is loaded by its entry point)."""

from __future__ import annotations

import os

import pytest
from pytest_httpserver import HTTPServer
from pytest_qstash import QStashHarness
from qstash import QStash, Receiver
from qstash.errors import SignatureError
from qstash_emulator.core.users import DEV_SERVER_USERS
from werkzeug import Request, Response


def test_env_is_set_for_the_test(qstash: QStashHarness) -> None:
    assert os.environ["QSTASH_URL"] == qstash.url
    assert os.environ["QSTASH_TOKEN"] == qstash.token
    assert os.environ["QSTASH_CURRENT_SIGNING_KEY"] == DEV_SERVER_USERS[0][2]
    assert os.environ["QSTASH_NEXT_SIGNING_KEY"] == DEV_SERVER_USERS[0][3]
    assert qstash.env() == {k: os.environ[k] for k in qstash.env()}


def test_an_app_reading_env_publishes_to_a_capture(qstash: QStashHarness) -> None:
    # What an app does: build its client from the environment.
    app_client = QStash(os.environ["QSTASH_TOKEN"], base_url=os.environ["QSTASH_URL"])
    hook = qstash.capture("orders")
    result = app_client.message.publish_json(url=hook.url, body={"order": 7})
    [delivered] = qstash.assert_delivered(hook, json={"order": 7})
    assert delivered.message_id == result.message_id  # type: ignore[union-attr]
    assert delivered.signed and delivered.claims is not None
    assert delivered.claims["sub"] == hook.url
    assert hook.requests[0].json() == {"order": 7}
    assert hook.requests[0].header("Upstash-Message-Id") == result.message_id  # type: ignore[union-attr]


def test_receiver_fixture_verifies_a_captured_request(
    qstash: QStashHarness, qstash_client: QStash, qstash_receiver: Receiver
) -> None:
    hook = qstash.capture()
    qstash_client.message.publish(url=hook.url, body="hello")
    [request] = hook.requests
    signature = request.header("Upstash-Signature")
    assert signature is not None
    qstash_receiver.verify(signature=signature, body=request.text, url=hook.url)
    with pytest.raises(SignatureError):
        qstash_receiver.verify(signature=signature, body="tampered", url=hook.url)


def test_httpserver_endpoint_as_destination(
    qstash: QStashHarness, qstash_client: QStash, qstash_receiver: Receiver, httpserver: HTTPServer
) -> None:
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        seen.append(request)
        return Response("ok")

    httpserver.expect_request("/hook", method="POST").respond_with_handler(handler)
    url = httpserver.url_for("/hook")
    qstash_client.message.publish_json(url=url, body={"a": 1}, headers={"X-Tenant": "t1"})
    [delivered] = qstash.assert_delivered(url, headers={"X-Tenant": "t1"})
    assert delivered.status == 200 and delivered.response_body == b"ok"
    assert len(seen) == 1
    qstash_receiver.verify(
        signature=seen[0].headers["Upstash-Signature"], body=seen[0].get_data(as_text=True), url=url
    )


def test_capture_sequence_drives_retries(qstash: QStashHarness, qstash_client: QStash) -> None:
    hook = qstash.capture(sequence=[500, {"status": 503, "body": "busy"}])
    qstash_client.message.publish(url=hook.url, body="x", retries=3)
    qstash.run_until_idle()
    attempts = qstash.deliveries(hook)
    assert [(d.retried, d.status) for d in attempts] == [(0, 500), (1, 503), (2, 200)]
    assert attempts[1].response_body == b"busy"
    assert [r.status for r in hook.requests] == [500, 503, 200]
    qstash.assert_delivered(hook, times=3)
    qstash.assert_delivered(hook, status=200, times=1)


def test_capture_reply_reaches_the_callback(qstash: QStashHarness, qstash_client: QStash) -> None:
    hook = qstash.capture("work", status=201, body={"done": True})
    done = qstash.capture("done")
    result = qstash_client.message.publish(url=hook.url, body="job", callback=done.url)
    qstash.settle()
    [callback] = qstash.assert_callback(
        done,
        source_message_id=result.message_id,
        source_status=201,  # type: ignore[union-attr]
    )
    assert callback.kind == "callback"
    assert callback.json()["body"]  # the destination's answer, base64
    assert qstash.callbacks() == [callback]
    with pytest.raises(AssertionError, match="assert_delivered"):
        qstash.assert_callback(done, source_status=500)


def test_queries_by_id_header_body_and_schedule(
    qstash: QStashHarness, qstash_client: QStash
) -> None:
    hook = qstash.capture()
    a = qstash_client.message.publish(url=hook.url, body="alpha", headers={"X-Kind": "a"})
    qstash_client.message.publish(url=hook.url, body="beta", headers={"X-Kind": "b"})
    schedule_id = qstash_client.schedule.create(destination=hook.url, cron="* * * * *", body="c")
    qstash.advance("60s")
    assert [d.text for d in qstash.deliveries(hook)] == ["alpha", "beta", "c"]
    assert [d.text for d in qstash.deliveries(message_id=a.message_id)] == ["alpha"]  # type: ignore[union-attr]
    assert [d.text for d in qstash.deliveries(header=("X-Kind", "b"))] == ["beta"]
    assert [d.text for d in qstash.deliveries(header="X-Kind")] == ["alpha", "beta"]
    assert [d.text for d in qstash.deliveries(contains="lph")] == ["alpha"]
    assert [d.text for d in qstash.deliveries(schedule_id=schedule_id)] == ["c"]
    assert qstash.deliveries(body="beta", method="post")[0].header("X-Kind") == "b"
    assert qstash.deliveries(where=lambda d: d.text.startswith("b"))[0].text == "beta"


def test_fresh_server_is_another_server(
    qstash_fresh: QStashHarness, qstash_client: QStash, qstash_server: object
) -> None:
    assert qstash_fresh.url != qstash_server.emulator.url  # type: ignore[attr-defined]
    assert os.environ["QSTASH_URL"] == qstash_fresh.url
    hook = qstash_fresh.capture()
    qstash_client.message.publish(url=hook.url, body="x")  # the client follows the fixture
    qstash_fresh.assert_delivered(hook, body="x")


@pytest.mark.qstash(users=["alice:pro"])
def test_extra_user_from_marker(qstash: QStashHarness) -> None:
    alice = qstash.client("alice")
    hook = qstash.capture()
    alice.message.publish(url=hook.url, body="from alice", retries=10)  # pro allows > 5
    [delivered] = qstash.assert_delivered(hook, user="alice")
    assert delivered.signed  # with alice's own keys
    assert qstash.env("alice")["QSTASH_TOKEN"] != qstash.token


@pytest.mark.qstash(quota="pro")
def test_quota_tier_from_marker(qstash: QStashHarness, qstash_client: QStash) -> None:
    hook = qstash.capture()
    qstash_client.message.publish(url=hook.url, body="x", retries=10)
    assert qstash.user.quota.name == "pro"


def test_default_quota_is_back_after_a_pro_test(
    qstash: QStashHarness, qstash_client: QStash
) -> None:
    with pytest.raises(Exception, match="retries"):
        qstash_client.message.publish(url=qstash.capture().url, body="x", retries=10)


@pytest.mark.qstash(rate_limits={"daily_messages": 1})
def test_rate_limits_from_marker(qstash: QStashHarness, qstash_client: QStash) -> None:
    hook = qstash.capture()
    qstash_client.message.publish(url=hook.url, body="1")
    with pytest.raises(Exception, match=r"(?i)limit"):
        qstash_client.message.publish(url=hook.url, body="2")


@pytest.mark.qstash(log=True)
def test_log_of_requests_and_deliveries(qstash: QStashHarness, qstash_client: QStash) -> None:
    hook = qstash.capture("logged")
    qstash_client.message.publish(url=hook.url, body="x")
    qstash.settle()
    text = "\n".join(qstash.log)
    assert "POST /v2/publish/" in text and "-> 200" in text
    assert "deliver msg_" in text and "/__capture/logged" in text


@pytest.mark.qstash(log=True)
def test_the_log_never_shows_a_token_given_in_the_query(qstash: QStashHarness) -> None:
    import httpx

    hook = qstash.capture("query-token")
    answer = httpx.post(
        f"{qstash.url}/v2/publish/{hook.url}",
        params={"qstashToken": qstash.token, "keep": "1"},
        content=b"x",
    )
    assert answer.status_code == 200
    text = "\n".join(qstash.log)
    assert "keep=1" in text and qstash.token not in text and "qstashToken" not in text


def test_snapshot_is_stable(qstash: QStashHarness, qstash_client: QStash) -> None:
    hook = qstash.capture("snap")
    qstash_client.message.publish_json(url=hook.url, body={"a": 1})
    [snap] = qstash.snapshot(hook)
    assert snap["url"] == "http://qstash-emulator/__capture/snap"
    assert snap["time"] == "2025-01-01T00:00:00.000Z"
    assert all(name.lower() != "upstash-signature" for name, _ in snap["headers"])
    assert snap["signed"] is True and snap["status"] == 200


def _publish_id(qstash: QStashHarness, client: QStash) -> str:
    result = client.message.publish(url=qstash.capture("seeded").url, body="x")
    return result.message_id  # type: ignore[union-attr,no-any-return]


@pytest.mark.qstash(seed=42)
def test_seed_from_marker_gives_the_same_ids(qstash: QStashHarness, qstash_client: QStash) -> None:
    first = _publish_id(qstash, qstash_client)
    qstash.emulator.reset(seed=42)  # what the next test with this seed starts from
    assert _publish_id(qstash, qstash_client) == first
    qstash.emulator.reset(seed=43)
    assert _publish_id(qstash, qstash_client) != first


@pytest.mark.qstash(seed=43)
def test_seed_from_marker_differs(qstash: QStashHarness, qstash_client: QStash) -> None:
    other = _publish_id(qstash, qstash_client)
    qstash.emulator.reset(seed=42)
    assert _publish_id(qstash, qstash_client) != other


def test_emulator_state_is_fresh(qstash: QStashHarness, qstash_client: QStash) -> None:
    # Leave work behind: the next test must not see it.
    qstash_client.message.publish(url=qstash.capture("left").url, body="x", delay="1h")
    assert qstash.deliveries() == []


def test_after_leftover_work(qstash: QStashHarness) -> None:
    qstash.run_until_idle()
    assert qstash.deliveries() == []
    assert qstash.now == qstash.started
