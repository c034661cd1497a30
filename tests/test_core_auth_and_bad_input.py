"""Tokens, per-user isolation, and bad input: QStash's status and error body, no state change."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from qstash import QStash
from qstash_emulator import Emulator
from qstash_emulator.core.users import DEV_SERVER_USERS, dev_token


def post(
    emu: Emulator,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"x",
    token: str | None = None,
) -> httpx.Response:
    auth = {"Authorization": f"Bearer {token or emu.token}"}
    return httpx.post(f"{emu.url}{path}", headers={**auth, **(headers or {})}, content=body)


def assert_nothing_stored(emu: Emulator) -> None:
    res = httpx.get(f"{emu.url}/v2/logs", headers={"Authorization": f"Bearer {emu.token}"})
    assert res.json()["logs"] == []
    assert list(emu.engine.delivered) == []


def test_the_dev_server_users_are_known(emu: Emulator) -> None:
    tokens = {u.token for u in emu.users}
    assert {dev_token(uid, pw) for uid, pw, _, _ in DEV_SERVER_USERS} == tokens
    assert "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0=" in tokens
    env = emu.env("testUser1")
    assert env["QSTASH_CURRENT_SIGNING_KEY"] == "sig_7GVPjvuwsfqF65iC8fSrs1dfYruM"
    assert env["QSTASH_NEXT_SIGNING_KEY"] == "sig_5NoELc3EFnZn4DVS5bDs2Nk4b7Ua"
    assert env["QSTASH_URL"] == emu.url


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}],
)
def test_missing_or_wrong_token_is_401(
    emu: Emulator, target: Callable[..., str], headers: dict[str, str]
) -> None:
    res = httpx.post(f"{emu.url}/v2/publish/{target('/x')}", headers=headers, content=b"x")
    assert res.status_code == 401
    assert "error" in res.json()
    assert_nothing_stored(emu)


def test_users_see_only_their_own_things(emu: Emulator, target: Callable[..., str]) -> None:
    url = target("/iso", 500)
    mine = QStash(emu.token, base_url=emu.url, retry=False)
    other_user = emu.users.add("alice")
    theirs = QStash(other_user.token, base_url=emu.url, retry=False)
    res = mine.message.publish(url=url, body="x", retries=0, delay="1s")
    assert theirs.log.list().logs == []
    with pytest.raises(Exception, match="404"):
        theirs.message.get(res.message_id)
    emu.advance(1)
    assert len(mine.dlq.list().messages) == 1
    assert theirs.dlq.list().messages == []
    assert theirs.signing_key.get().current == other_user.current_signing_key


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({"Upstash-Retries": "-1"}, "Upstash-Retries"),
        ({"Upstash-Retries": "abc"}, "Upstash-Retries"),
        ({"Upstash-Retries": "6"}, "plan"),
        ({"Upstash-Delay": "soon"}, "Upstash-Delay"),
        ({"Upstash-Delay": "-5s"}, "Upstash-Delay"),
        ({"Upstash-Not-Before": "tomorrow"}, "Upstash-Not-Before"),
        ({"Upstash-Retry-Delay": "retried +"}, "Upstash-Retry-Delay"),
        ({"Upstash-Retry-Delay": "__import__('os')"}, "Upstash-Retry-Delay"),
        ({"Upstash-Timeout": "forever"}, "Upstash-Timeout"),
        ({"Upstash-Method": "TRACE"}, "Upstash-Method"),
        ({"Upstash-Callback": "not a url"}, "callback"),
        ({"Upstash-Failure-Callback": "ftp://x"}, "failure callback"),
        ({"Upstash-Content-Based-Deduplication": "maybe"}, "Deduplication"),
        ({"Upstash-Redact-Fields": "everything"}, "Redact"),
    ],
)
def test_bad_headers_are_400_and_store_nothing(
    emu: Emulator, target: Callable[..., str], headers: dict[str, str], fragment: str
) -> None:
    res = post(emu, f"/v2/publish/{target('/bad')}", headers)
    assert res.status_code == 400, res.text
    assert fragment in res.json()["error"]
    assert_nothing_stored(emu)


@pytest.mark.parametrize(
    "destination", ["not-a-url/with/slashes", "ftp://example.com/x", "http://"]
)
def test_malformed_destination_is_400(emu: Emulator, destination: str) -> None:
    res = post(emu, f"/v2/publish/{destination}")
    assert res.status_code == 400
    assert "destination" in res.json()["error"]
    assert_nothing_stored(emu)


def test_a_body_over_the_plan_limit_is_413(emu: Emulator, target: Callable[..., str]) -> None:
    res = post(emu, f"/v2/publish/{target('/big')}", body=b"x" * 1_000_001)
    assert res.status_code == 413
    assert "limit" in res.json()["error"]
    assert_nothing_stored(emu)


def test_the_pro_quota_allows_more(target: Callable[..., str]) -> None:
    with Emulator(quota="pro") as emu:
        res = post(
            emu, f"/v2/publish/{target('/pro')}", {"Upstash-Retries": "20"}, body=b"x" * 2_000_000
        )
        assert res.status_code == 200, res.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/messages/msg_nope"),
        ("DELETE", "/v2/messages/msg_nope"),
        ("GET", "/v2/dlq/123-0"),
        ("DELETE", "/v2/dlq/123-0"),
        ("POST", "/v2/dlq/retry/123-0"),
    ],
)
def test_unknown_ids_are_404(emu: Emulator, method: str, path: str) -> None:
    res = httpx.request(
        method, f"{emu.url}{path}", headers={"Authorization": f"Bearer {emu.token}"}
    )
    assert res.status_code == 404
    assert "not found" in res.json()["error"]


def test_bad_cursor_and_count_are_400(emu: Emulator) -> None:
    auth = {"Authorization": f"Bearer {emu.token}"}
    assert httpx.get(f"{emu.url}/v2/logs?cursor=%%%", headers=auth).status_code == 400
    assert httpx.get(f"{emu.url}/v2/dlq?count=zero", headers=auth).status_code == 400


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/v2/nothing-here", 404), ("PUT", "/v2/keys", 405), ("PATCH", "/v2/dlq", 405)],
)
def test_unknown_routes_and_methods_answer_json_errors(
    emu: Emulator, method: str, path: str, status: int
) -> None:
    res = httpx.request(
        method, f"{emu.url}{path}", headers={"Authorization": f"Bearer {emu.token}"}
    )
    assert res.status_code == status
    assert path in res.json()["error"]
    if status == 405:
        assert res.headers["Allow"]
