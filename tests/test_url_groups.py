"""URL groups through the official SDK: endpoints, fan-out, isolated retries, callbacks."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import httpx
import pytest
from helpers import requests_to
from pytest_httpserver import HTTPServer
from qstash import QStash
from qstash.errors import QStashError
from qstash.log import LogState
from qstash.url_group import Endpoint
from qstash_emulator import Emulator


def test_endpoints_are_added_updated_removed_and_the_empty_group_goes(
    emu: Emulator, client: QStash
) -> None:
    client.url_group.upsert_endpoints(
        "team", [{"name": "a", "url": "http://127.0.0.1:9/a"}, {"url": "http://127.0.0.1:9/b"}]
    )
    created = client.url_group.get("team").created_at
    emu.advance("1m")
    # A known name gets its url updated; a new url is appended.
    client.url_group.upsert_endpoints(
        "team", [{"name": "a", "url": "http://127.0.0.1:9/a2"}, {"url": "http://127.0.0.1:9/c"}]
    )

    group = client.url_group.get("team")
    assert group.endpoints == [
        Endpoint(url="http://127.0.0.1:9/a2", name="a"),
        Endpoint(url="http://127.0.0.1:9/b", name=None),
        Endpoint(url="http://127.0.0.1:9/c", name=None),
    ]
    assert (group.created_at, group.updated_at) == (created, created + 60_000)
    assert [g.name for g in client.url_group.list()] == ["team"]

    client.url_group.remove_endpoints("team", [{"name": "a"}, {"url": "http://127.0.0.1:9/c"}])
    assert client.url_group.get("team").endpoints == [Endpoint("http://127.0.0.1:9/b", None)]
    client.url_group.remove_endpoints("team", [{"url": "http://127.0.0.1:9/b"}])
    with pytest.raises(QStashError, match="404"):
        client.url_group.get("team")
    assert client.url_group.list() == []


def test_delete_removes_the_group(emu: Emulator, client: QStash) -> None:
    client.url_group.upsert_endpoints("team", [{"url": "http://127.0.0.1:9/a"}])
    client.url_group.upsert_endpoints("other", [{"url": "http://127.0.0.1:9/b"}])
    client.url_group.delete("team")
    assert [g.name for g in client.url_group.list()] == ["other"]
    with pytest.raises(QStashError, match="404"):
        client.url_group.get("team")
    # Deleting a group that does not exist is not an error (suites delete before they create).
    client.url_group.delete("team")
    client.url_group.delete("never-was")
    assert [g.name for g in client.url_group.list()] == ["other"]


def test_group_json_has_the_reference_fields(emu: Emulator, client: QStash) -> None:
    client.url_group.upsert_endpoints("team", [{"name": "a", "url": "http://127.0.0.1:9/a"}])
    response = httpx.get(
        f"{emu.url}/v2/topics/team", headers={"Authorization": f"Bearer {emu.token}"}
    )
    now = int(emu.now * 1000)
    assert response.json() == {
        "name": "team",
        "createdAt": now,
        "updatedAt": now,
        "endpoints": [{"name": "a", "url": "http://127.0.0.1:9/a"}],
    }


def test_publishing_to_a_group_fans_out_one_message_per_endpoint(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    a, b = target("/a"), target("/b")
    client.url_group.upsert_endpoints("team", [{"name": "alpha", "url": a}, {"url": b}])
    result = client.message.publish_json(url_group="team", body={"hi": 1}, delay="10s")
    assert isinstance(result, list)
    assert [r.url for r in result] == [a, b]
    assert result[0].message_id != result[1].message_id

    pending = client.message.get(result[0].message_id)
    assert (pending.url_group, pending.endpoint, pending.url) == ("team", "alpha", a)
    assert client.message.get(result[1].message_id).endpoint is None

    emu.advance("10s")
    for path, res in (("/a", result[0]), ("/b", result[1])):
        [req] = requests_to(httpserver, path)
        assert json.loads(req.get_data()) == {"hi": 1}
        assert req.headers["Upstash-Topic-Name"] == "team"
        assert req.headers["Upstash-Message-Id"] == res.message_id
    logs = client.log.list(filter={"url_group": "team", "state": LogState.DELIVERED}).logs
    assert {(log.url, log.endpoint) for log in logs} == {(a, "alpha"), (b, None)}


def test_each_endpoint_is_retried_and_dead_lettered_on_its_own(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    good, flaky, broken = target("/good"), target("/flaky", 500, 200), target("/broken", 500)
    client.url_group.upsert_endpoints(
        "team", [{"url": good}, {"url": flaky}, {"name": "dead", "url": broken}]
    )
    client.message.publish(url_group="team", body="x", retries=1)
    emu.run_until_idle()

    assert len(requests_to(httpserver, "/good")) == 1
    assert len(requests_to(httpserver, "/flaky")) == 2
    assert len(requests_to(httpserver, "/broken")) == 2
    [entry] = client.dlq.list().messages
    assert (entry.url, entry.url_group, entry.endpoint) == (broken, "team", "dead")


def test_callbacks_of_group_messages_name_the_group_and_endpoint(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    a, callback = target("/a"), target("/callback")
    client.url_group.upsert_endpoints("team", [{"name": "alpha", "url": a}])
    client.message.publish(url_group="team", body="x", callback=callback)
    emu.settle()

    [req] = requests_to(httpserver, "/callback")
    body = json.loads(req.get_data())
    assert (body["topicName"], body["endpointName"], body["url"]) == ("team", "alpha", a)
    assert base64.b64decode(body["sourceBody"]) == b"x"


def test_enqueueing_to_a_group_queues_every_endpoint_message(
    emu: Emulator, client: QStash, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    a, b = target("/a"), target("/b")
    client.url_group.upsert_endpoints("team", [{"url": a}, {"url": b}])
    client.queue.upsert("jobs", paused=True)
    result = client.message.enqueue(queue="jobs", url_group="team", body="x")
    assert isinstance(result, list) and [r.url for r in result] == [a, b]
    emu.settle()
    assert client.queue.get("jobs").lag == 2
    assert httpserver.log == []

    client.queue.resume("jobs")
    emu.settle()
    assert [d.url for d in emu.engine.delivered] == [a, b]
    assert {d.message.queue_name for d in emu.engine.delivered} == {"jobs"}


def test_publishing_to_an_unknown_group_is_404_and_stores_nothing(
    emu: Emulator, client: QStash
) -> None:
    with pytest.raises(QStashError, match="404") as err:
        client.message.publish(url_group="nobody", body="x")
    assert "url group nobody not found" in str(err.value)
    with pytest.raises(QStashError, match="400"):
        client.message.publish(url_group="not a group!", body="x")
    assert emu.engine.state(emu.user).messages == {}
    assert client.log.list().logs == []


@pytest.mark.parametrize(
    ("name", "body", "needle"),
    [
        ("team", {"endpoints": [{"url": "ftp://x"}]}, "invalid url"),
        ("team", {"endpoints": [{"name": "a"}]}, "url is required"),
        ("team", {"endpoints": []}, "endpoints"),
        ("team", {}, "endpoints"),
        ("bad$name", {"endpoints": [{"url": "http://127.0.0.1:9/a"}]}, "invalid url group name"),
    ],
)
def test_bad_endpoint_requests_are_400_and_change_nothing(
    emu: Emulator, client: QStash, name: str, body: dict[str, object], needle: str
) -> None:
    response = httpx.post(
        f"{emu.url}/v2/topics/{name}/endpoints",
        json=body,
        headers={"Authorization": f"Bearer {emu.token}"},
    )
    assert response.status_code == 400
    assert needle in response.json()["error"]
    assert client.url_group.list() == []


def test_removing_from_an_unknown_group_is_404(emu: Emulator, client: QStash) -> None:
    with pytest.raises(QStashError, match="404"):
        client.url_group.remove_endpoints("nobody", [{"url": "http://127.0.0.1:9/a"}])
