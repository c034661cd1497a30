"""The dashboard's reading of message states, without a browser."""

from __future__ import annotations

from qstash import QStash
from qstash_emulator import Emulator
from qstash_emulator.dashboard import pages, views


def dashboard_index(emu: Emulator) -> views.MessageIndex:
    return emu.app[pages.INDEX]


def test_every_state_is_read_and_counted(emu: Emulator, client: QStash) -> None:
    base = f"{emu.url}/__capture"
    emu.faults.add(f"{base}/fails", status=500)
    client.queue.upsert("held", parallelism=1, paused=True)
    ids = {
        "delivered": client.message.publish(url=f"{base}/ok", body="a").message_id,
        "failed": client.message.publish(url=f"{base}/fails", body="b", retries=0).message_id,
        "retry": client.message.publish(url=f"{base}/fails", body="c", retries=2).message_id,
        "delayed": client.message.publish(url=f"{base}/ok", body="d", delay="1h").message_id,
        "pending": client.message.enqueue(queue="held", url=f"{base}/ok", body="e").message_id,
        "cancelled": client.message.publish(url=f"{base}/ok", body="f", delay="1h").message_id,
    }
    client.message.cancel(ids["cancelled"])
    emu.settle()

    index = dashboard_index(emu).read(emu.user)
    now = emu.now
    for key, message_id in ids.items():
        message = index.messages[message_id]
        assert views.status(message, now).key == key
        assert views.state_key(message, now) == key
    page = views.message_page(index, views.MessageQuery(), now)
    assert page.counts == {
        "pending": 1,
        "delayed": 1,
        "in_flight": 0,
        "retry": 1,
        "delivered": 1,
        "failed": 1,
        "cancelled": 1,
    }
    assert [m.id for m, _ in page.rows][:2] == [ids["cancelled"], ids["pending"]]  # newest first
    assert "waiting on queue held" in views.status(index.messages[ids["pending"]], now).detail
    assert "attempt 2 of 3" in views.status(index.messages[ids["retry"]], now).detail


def test_an_index_follows_the_log_across_a_reset(emu: Emulator, client: QStash) -> None:
    index = dashboard_index(emu)
    client.message.publish(url=f"{emu.url}/__capture/x", body="1")
    emu.settle()
    assert len(index.read(emu.user).messages) == 1
    emu.reset()
    assert index.read(emu.user).messages == {}
    client.message.publish(url=f"{emu.url}/__capture/x", body="2")
    emu.settle()
    read = index.read(emu.user)
    assert len(read.messages) == 1 and read.final_counts["delivered"] == 1


def test_a_long_history_forgets_its_oldest_messages(emu: Emulator, client: QStash) -> None:
    index = dashboard_index(emu)
    index.limit = 3
    url = f"{emu.url}/__capture/x"
    ids = [client.message.publish(url=url, body="0").message_id]
    emu.settle()  # delivered: a finished message
    ids += [client.message.publish(url=url, body=str(n), delay="1h").message_id for n in (1, 2, 3)]
    read = index.read(emu.user)
    assert list(read.messages) == ids[1:]
    page = views.message_page(read, views.MessageQuery(), emu.now)
    assert page.total == 3 and page.counts["delayed"] == 3 and page.counts["delivered"] == 0

    ids.append(client.message.publish(url=url, body="4", delay="1h").message_id)
    emu.advance("1h")  # the forgotten message 1 is delivered too, and stays forgotten
    assert list(read.messages) == ids[2:]
    assert read.final_counts["delivered"] == 3 and not read.unfinished
    assert set(read.events) == set(ids[2:])


def test_messages_restored_from_a_data_file_are_shown(tmp_path: object) -> None:
    import httpx

    with Emulator(data_dir=str(tmp_path)) as first:
        client = QStash(first.token, base_url=first.url)
        done = client.message.publish(url=f"{first.url}/__capture/x", body="a").message_id
        later = client.message.publish(url=f"{first.url}/__capture/x", body="b", delay="1h")
        first.settle()
    with Emulator(data_dir=str(tmp_path)) as second:
        page = httpx.get(f"{second.url}/__dashboard/messages").text
        assert (
            f'data-message-id="{done}"' in page and f'data-message-id="{later.message_id}"' in page
        )
        index = dashboard_index(second).read(second.user)
        assert index.final_counts["delivered"] == 1 and len(index.unfinished) == 1
        # What is logged after the restart joins what was restored, once.
        QStash(second.token, base_url=second.url).message.publish(
            url=f"{second.url}/__capture/x", body="c"
        )
        second.settle()
        assert len(index.messages) == 3 and index.final_counts["delivered"] == 2
        assert all(
            len(index.events[m]) == len({e.idx for e in index.events[m]}) for m in index.messages
        )
