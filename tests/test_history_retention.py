"""History is bounded by a retention, and a page of it costs the page, not the history
(issue 11, item 6)."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from qstash import QStash
from qstash_emulator import Emulator
from qstash_emulator.http import dlq as dlq_handlers
from qstash_emulator.http import logs as log_handlers
from qstash_emulator.parsing.publish_headers import MessageSpec


def publish_many(emu: Emulator, n: int, url: str, **spec: object) -> list[str]:
    """Publish straight through the engine on its loop (fast): what an HTTP publish stores."""

    def run() -> list[str]:
        return [
            emu.engine.publish_url(
                emu.user, url, MessageSpec(**spec), str(i).encode(), caller_ip="127.0.0.1"
            )["messageId"]
            for i in range(n)
        ]

    return emu.call_soon(run)


def get(emu: Emulator, path: str) -> httpx.Response:
    return httpx.get(emu.url + path, headers={"Authorization": f"Bearer {emu.token}"})


def test_logs_keep_at_most_the_configured_entries_newest_kept() -> None:
    with Emulator(history_max_entries=100) as emu:
        ids = publish_many(emu, 60, f"{emu.url}/__capture/r")
        emu.settle()  # each message logs CREATED, ACTIVE, DELIVERED: 180 entries
        kept = emu.engine.state(emu.user).logs
        assert 100 <= len(kept) < 110  # trimmed in chunks of a tenth
        logged = {e.message.id for e in kept}
        assert ids[-1] in logged and ids[0] not in logged
        client = QStash(emu.token, base_url=emu.url)
        assert client.log.list(filter={"message_id": ids[0]}).logs == []
        assert {
            log.state.value for log in client.log.list(filter={"message_id": ids[-1]}).logs
        } == {
            "CREATED",
            "ACTIVE",
            "DELIVERED",
        }


def test_logs_older_than_the_max_age_are_dropped() -> None:
    with Emulator(history_max_age="1h") as emu:
        old = publish_many(emu, 3, f"{emu.url}/__capture/r")
        emu.settle()
        emu.advance("2h")
        new = publish_many(emu, 1, f"{emu.url}/__capture/r")
        emu.settle()
        logged = [e["messageId"] for e in get(emu, "/v2/logs").json()["logs"]]
        assert set(logged) == set(new) and not set(old) & set(logged)


def test_delivery_records_are_bounded() -> None:
    with Emulator(keep_deliveries=10) as emu:
        publish_many(emu, 25, f"{emu.url}/__capture/r")
        emu.settle()
        assert len(emu.engine.delivered) == 10
        assert [d.body for d in emu.engine.delivered][-1] == b"24"


def test_the_defaults_bound_history(emu: Emulator) -> None:
    assert emu.engine.delivered.maxlen == 100_000
    assert emu.engine.retention.max_entries == 100_000


def test_a_logs_page_reads_the_page_not_the_history(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish_many(emu, 2000, f"{emu.url}/__capture/r", delay=60)  # 2,000 CREATED entries
    examined = []
    real = log_handlers.state_matches

    def counting(wanted: str | None, state: str) -> bool:
        examined.append(state)
        return real(wanted, state)

    monkeypatch.setattr(log_handlers, "state_matches", counting)
    first = get(emu, "/v2/logs?count=10").json()
    assert len(first["logs"]) == 10 and len(examined) <= 11
    examined.clear()
    second = get(emu, f"/v2/logs?count=10&cursor={first['cursor']}").json()
    assert len(examined) <= 11
    assert [e["time"] for e in second["logs"]] <= [e["time"] for e in first["logs"]]
    assert not {e["messageId"] for e in first["logs"]} & {e["messageId"] for e in second["logs"]}


def test_a_dlq_page_reads_the_page_not_the_dlq(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"{emu.url}/__capture/dead"
    emu.faults.add(url, fail_times=500)
    publish_many(emu, 300, url, retries=0)
    emu.settle()
    assert len(emu.engine.state(emu.user).dlq) == 300
    examined = []
    real = dlq_handlers.message_filter

    def counting(query):  # type: ignore[no-untyped-def]
        keep = real(query)

        def check(message, time):  # type: ignore[no-untyped-def]
            examined.append(message.id)
            return keep(message, time)

        return check

    monkeypatch.setattr(dlq_handlers, "message_filter", counting)
    page = get(emu, "/v2/dlq?count=5").json()
    assert len(page["messages"]) == 5 and len(examined) <= 6
    following = get(emu, f"/v2/dlq?count=5&cursor={page['cursor']}").json()
    assert not {m["dlqId"] for m in page["messages"]} & {m["dlqId"] for m in following["messages"]}
    # The whole DLQ, page by page, is every entry once, newest first.
    seen, cursor = [], ""
    while True:
        answer = get(emu, f"/v2/dlq?count=100{'&cursor=' + cursor if cursor else ''}").json()
        seen += answer["messages"]
        cursor = answer.get("cursor", "")
        if not cursor:
            break
    assert len({m["dlqId"] for m in seen}) == 300


@pytest.mark.parametrize("path", ["/v2/logs", "/v2/events", "/v2/dlq"])
@pytest.mark.parametrize(
    "raw", ['"x"', "[1, 2]", '[1, "a", 2]', "[1, [true], 3]", "{}", "[null, [], 1]"]
)
def test_a_malformed_cursor_is_a_400(emu: Emulator, path: str, raw: str) -> None:
    publish_many(emu, 3, f"{emu.url}/__capture/r", delay=60)
    cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    res = get(emu, f"{path}?cursor={cursor}")
    assert res.status_code == 400
    assert "cursor" in res.json()["error"]


def test_a_cursor_from_a_page_still_works_after_more_publishes(emu: Emulator) -> None:
    publish_many(emu, 5, f"{emu.url}/__capture/r", delay=60)
    first = get(emu, "/v2/logs?count=2").json()
    publish_many(emu, 5, f"{emu.url}/__capture/r", delay=60)
    rest = get(emu, f"/v2/logs?count=100&cursor={first['cursor']}").json()["logs"]
    assert len(rest) == 3
    key = json.loads(base64.urlsafe_b64decode(first["cursor"] + "=="))
    assert all(e["time"] <= key[0] * 1000 for e in rest)


def test_a_message_id_filter_reads_that_messages_entries_only(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = publish_many(emu, 2000, f"{emu.url}/__capture/r", delay=60)
    examined = []
    real = log_handlers.state_matches

    def counting(wanted: str | None, state: str) -> bool:
        examined.append(state)
        return real(wanted, state)

    monkeypatch.setattr(log_handlers, "state_matches", counting)
    answer = get(emu, f"/v2/logs?messageId={ids[3]}&messageId={ids[1500]}").json()
    assert {e["messageId"] for e in answer["logs"]} == {ids[3], ids[1500]}
    assert [e["messageId"] for e in answer["logs"]] == [ids[1500], ids[3]]  # newest first
    assert len(examined) == 2


def test_trimmed_entries_leave_the_message_index_too() -> None:
    with Emulator(history_max_entries=100) as emu:
        ids = publish_many(emu, 60, f"{emu.url}/__capture/r")
        emu.settle()
        index = emu.engine.state(emu.user).logs
        assert index.of_messages([ids[0]]) == []
        assert [e.state for e in index.of_messages([ids[-1]])] == [
            "DELIVERED",
            "ACTIVE",
            "CREATED",
        ]
        kept = {e.message.id for e in index}
        assert {i for i in ids if index.of_messages([i])} == kept
        # A cursor inside one message's entries pages on from there.
        [newest, *rest] = index.of_messages([ids[-1]])
        assert index.of_messages([ids[-1]], after=newest.key) == rest
