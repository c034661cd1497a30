"""The log index on its own: a message's entries by id, as one entry or several, and trimming."""

from __future__ import annotations

from qstash_emulator.core.history import LogIndex, Retention
from qstash_emulator.core.state import LogEntry, Message
from qstash_emulator.core.users import Users


def message(n: int) -> Message:
    user = Users().default
    return Message(
        id=f"msg_{n}",
        user=user,
        url="http://app.test/",
        method="POST",
        headers={},
        body=b"",
        created_at=0.0,
        not_before=0.0,
        max_retries=0,
        timeout=1.0,
        order=(n,),
    )


def test_entries_by_message_whether_one_or_several_and_as_they_are_trimmed() -> None:
    index = LogIndex(Retention(max_entries=5), lambda: 100.0)  # trims one entry at six
    a, b = message(1), message(2)
    for t, (m, state) in enumerate(
        [(a, "CREATED"), (b, "CREATED"), (a, "ACTIVE"), (b, "ACTIVE"), (a, "DELIVERED")]
    ):
        index.append(LogEntry(float(t), m, state, t))

    def states(message_id: str) -> list[str]:
        return [e.state for e in index.of_messages([message_id])]

    assert states("msg_1") == ["DELIVERED", "ACTIVE", "CREATED"]
    assert [e.state for e in index.of_messages(["msg_2", "msg_3"])] == ["ACTIVE", "CREATED"]
    index.append(LogEntry(5.0, b, "DELIVERED", 5))  # the oldest entry (a's CREATED) goes
    assert (len(index), states("msg_1"), states("msg_2")) == (
        5,
        ["DELIVERED", "ACTIVE"],
        ["DELIVERED", "ACTIVE", "CREATED"],
    )
    index.append(LogEntry(6.0, message(6), "CREATED", 6))  # b's CREATED
    index.append(LogEntry(7.0, message(7), "CREATED", 7))  # a's ACTIVE: one entry left
    assert (states("msg_1"), states("msg_2")) == (["DELIVERED"], ["DELIVERED", "ACTIVE"])
    index.append(LogEntry(8.0, message(8), "CREATED", 8))  # a's last
    index.append(LogEntry(9.0, message(9), "CREATED", 9))  # b's ACTIVE: one entry left
    assert (states("msg_1"), states("msg_2"), states("msg_9")) == ([], ["DELIVERED"], ["CREATED"])
    assert [e.idx for e in index.newest_first()] == [9, 8, 7, 6, 5]
