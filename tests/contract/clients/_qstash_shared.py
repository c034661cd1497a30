"""Scenarios both Python SDK lines (`qstash` 2.0.5 and 3.x) run the same way.

`register(client, logs)` adds them: `client` is the line's `QStash`, `logs(message_id)` lists a
message's log states oldest first (2.0.5 reads `/v2/events`, 3.x `client.log`).
"""

from __future__ import annotations

import base64
import functools
import json
import time
from collections.abc import Callable
from typing import Any

from _contract import (
    CURRENT_KEY,
    NEXT_KEY,
    check,
    eventually,
    raises,
    scenario,
    url,
    wait_for,
)
from qstash import Receiver
from qstash.errors import QStashError, SignatureError

Logs = Callable[[str], list[str]]


def verify(receiver: Receiver, req: dict[str, Any], destination: str) -> None:
    """The official Receiver accepts the delivery, and rejects it once tampered with."""
    signature = req["headers"]["upstash-signature"]
    receiver.verify(signature=signature, body=req["body"], url=destination)
    raises(
        lambda: receiver.verify(signature=signature, body=req["body"] + " ", url=destination),
        SignatureError,
    )
    raises(
        lambda: receiver.verify(signature=signature, body=req["body"], url=destination + "x"),
        SignatureError,
    )


def register(client: Any, logs: Logs) -> None:
    receiver = Receiver(current_signing_key=CURRENT_KEY, next_signing_key=NEXT_KEY)

    @scenario
    def publish_json_receiver() -> dict[str, Any]:
        dest = url("hook?source=contract")
        res = client.message.publish_json(
            url=dest, body={"hello": "world"}, headers={"test-header": "test-value"}
        )
        check(res.message_id and not res.deduplicated, "publish answers a fresh message id")
        [req] = wait_for("hook")
        headers = req["headers"]
        check(req["method"] == "POST", "POST by default", method=req["method"])
        check(json.loads(req["body"]) == {"hello": "world"}, "JSON body", body=req["body"])
        check(headers.get("content-type") == "application/json", "content type", h=headers)
        check(headers.get("test-header") == "test-value", "forwarded header", h=headers)
        check(headers.get("upstash-message-id") == res.message_id, "message id header", h=headers)
        check(req["query"] == "source=contract", "query kept", query=req["query"])
        verify(receiver, req, dest)
        return {"message_id": res.message_id}

    @scenario
    def publish_raw_method() -> None:
        dest = url("raw")
        res = client.message.publish(
            url=dest, body="plain text", content_type="text/plain", method="PUT"
        )
        [req] = wait_for("raw")
        check(req["method"] == "PUT", "Upstash-Method honoured", method=req["method"])
        check(req["body"] == "plain text", "raw body", body=req["body"])
        check(req["headers"].get("content-type") == "text/plain", "content type")
        check(req["headers"].get("upstash-message-id") == res.message_id, "message id")
        verify(receiver, req, dest)

    @scenario
    def delay_and_not_before() -> dict[str, float]:
        start = time.time()
        delayed = client.message.publish_json(url=url("delayed"), body={"n": 1}, delay="2s")
        message = client.message.get(delayed.message_id)
        check(message.message_id == delayed.message_id, "message get")
        check(
            abs(message.not_before / 1000 - (start + 2)) < 1.5,
            "notBefore is publish time + delay",
            not_before=message.not_before,
            start=start,
        )
        later = int(time.time()) + 2
        client.message.publish_json(url=url("not-before"), body={"n": 2}, not_before=later)
        [first] = wait_for("delayed", timeout=10)
        [second] = wait_for("not-before", timeout=10)
        check(first["time"] - start >= 1.5, "delay respected", after=first["time"] - start)
        check(second["time"] >= later - 0.5, "not_before respected", at=second["time"])
        return {"delay": first["time"] - start, "not_before": second["time"] - later}

    @scenario
    def callbacks() -> None:
        res = client.message.publish_json(
            url=url("ok"), body={"x": 1}, callback=url("cb"), failure_callback=url("unused-fcb")
        )
        [cb] = wait_for("cb")
        body = json.loads(cb["body"])
        check(body.get("status") == 200, "callback carries the status", body=body)
        check(body.get("sourceMessageId") == res.message_id, "callback names its source")
        check(base64.b64decode(body.get("body", "")) == b"ok", "callback carries the response")
        verify(receiver, cb, url("cb"))
        failed = client.message.publish_json(
            url=url("status/500/fail"), body={"x": 2}, retries=0, failure_callback=url("fcb2")
        )
        [fcb] = wait_for("fcb2")
        body = json.loads(fcb["body"])
        check(body.get("status") == 500, "failure callback status", body=body)
        check(body.get("sourceMessageId") == failed.message_id, "failure callback source")
        verify(receiver, fcb, url("fcb2"))
        check(not received_any("unused-fcb"), "no failure callback for a success")

    def received_any(tail: str) -> bool:
        from _contract import path, received

        return bool(received(path(tail)))

    @scenario
    def dlq_list_get_delete() -> dict[str, Any]:
        ids = []
        for i in range(3):
            res = client.message.publish_json(
                url=url(f"status/500/dead{i}"), body={"i": i}, retries=0
            )
            ids.append(res.message_id)

        def in_dlq(mid: str) -> Any:
            found = client.dlq.list(filter={"message_id": mid}).messages
            return found[0] if found else None

        entries = [eventually(functools.partial(in_dlq, mid), f"DLQ of {mid}") for mid in ids]
        first = entries[0]
        check(first.message_id == ids[0], "DLQ entry names its message")
        check(first.url == url("status/500/dead0"), "DLQ entry url", url=first.url)
        check(first.response_status == 500, "DLQ entry keeps the response status")
        check(json.loads(first.body) == {"i": 0}, "DLQ entry keeps the body", body=first.body)
        got = client.dlq.get(first.dlq_id)
        check(got.dlq_id == first.dlq_id and got.message_id == ids[0], "DLQ get")
        client.dlq.delete(first.dlq_id)
        check(in_dlq(ids[0]) is None, "deleted from the DLQ")
        raises(lambda: client.dlq.get(first.dlq_id), QStashError)
        deleted = client.dlq.delete_many([e.dlq_id for e in entries[1:]])
        check(deleted == 2, "delete_many answers the count", deleted=deleted)
        check(all(in_dlq(mid) is None for mid in ids), "DLQ emptied")
        return {"dlq_id": first.dlq_id}

    @scenario
    def logs_states() -> list[str]:
        res = client.message.publish_json(url=url("logged"), body={})
        wait_for("logged")
        states = eventually(
            lambda: (s := logs(res.message_id)) and "DELIVERED" in s and s, "DELIVERED log"
        )
        check(states[0] == "CREATED", "first log state CREATED", states=states)
        check("ACTIVE" in states, "ACTIVE logged", states=states)
        failed = client.message.publish_json(url=url("status/500/x"), body={}, retries=0)
        states = eventually(
            lambda: (s := logs(failed.message_id)) and "FAILED" in s and s, "FAILED log"
        )
        check("CREATED" in states and "ACTIVE" in states, "the attempt logged", states=states)
        return list(states)

    @scenario
    def messages_get_cancel() -> None:
        res = client.message.publish_json(
            url=url("later"), body={"a": 1}, delay="1h", headers={"h": "v"}, retries=2
        )
        message = client.message.get(res.message_id)
        check(message.url == url("later"), "message url", url=message.url)
        check(message.method == "POST", "message method")
        check(json.loads(message.body) == {"a": 1}, "message body", body=message.body)
        check(message.max_retries == 2, "message retries", retries=message.max_retries)
        forwarded = {k.lower(): v for k, v in (message.headers or {}).items()}
        check(forwarded.get("h") == ["v"], "message headers", header=message.headers)
        client.message.cancel(res.message_id)
        raises(lambda: client.message.get(res.message_id), QStashError)
        check("CANCELED" in logs(res.message_id), "cancel logged", states=logs(res.message_id))
        more = [
            client.message.publish_json(url=url("later2"), body={}, delay="1h").message_id
            for _ in range(2)
        ]
        cancelled = client.message.cancel_many(more)
        check(cancelled == 2, "cancel_many answers the count", cancelled=cancelled)
        for mid in more:
            raises(functools.partial(client.message.get, mid), QStashError)

    @scenario
    def deduplication() -> None:
        first = client.message.publish_json(
            url=url("dedup"), body={"n": 1}, deduplication_id="contract-dedup"
        )
        again = client.message.publish_json(
            url=url("dedup"), body={"n": 2}, deduplication_id="contract-dedup"
        )
        check(again.deduplicated and again.message_id == first.message_id, "dedup by id")
        a = client.message.publish_json(
            url=url("cbd"), body={"same": True}, content_based_deduplication=True
        )
        b = client.message.publish_json(
            url=url("cbd"), body={"same": True}, content_based_deduplication=True
        )
        check(b.deduplicated and a.message_id == b.message_id, "content based dedup")
        wait_for("dedup")
        wait_for("cbd")

    @scenario
    def queues() -> dict[str, Any]:
        name = "contract-queue"
        client.queue.upsert(name, parallelism=2)
        queue = client.queue.get(name)
        check(queue.name == name and queue.parallelism == 2, "queue get", queue=str(queue))
        check(name in [q.name for q in client.queue.list()], "queue listed")
        client.queue.pause(name)
        check(client.queue.get(name).paused, "queue paused")
        held = client.message.enqueue_json(queue=name, url=url("queued/held"), body={"q": 0})
        client.queue.resume(name)
        check(not client.queue.get(name).paused, "queue resumed")
        res = client.message.enqueue_json(queue=name, url=url("queued/sent"), body={"q": 1})
        [req] = wait_for("queued/sent")
        wait_for("queued/held")
        check(req["headers"].get("upstash-message-id") == res.message_id, "enqueued delivered")
        message_states = logs(held.message_id)
        client.queue.delete(name)
        raises(lambda: client.queue.get(name), QStashError)
        return {"held_states": message_states}

    @scenario
    def batch() -> None:
        client.queue.upsert("contract-batch-queue", parallelism=1)
        answers = client.message.batch_json(
            [
                {"url": url("batch/a"), "body": {"n": "a"}, "headers": {"x-n": "a"}},
                {"url": url("batch/b"), "body": {"n": "b"}, "queue": "contract-batch-queue"},
            ]
        )
        check(len(answers) == 2, "one answer per message", answers=str(answers))
        ids = {a.message_id for a in answers}
        got = wait_for("batch/", count=2)
        check({r["headers"].get("upstash-message-id") for r in got} == ids, "both delivered")
        by_path = {r["path"].rsplit("/", 1)[-1]: r for r in got}
        check(json.loads(by_path["a"]["body"]) == {"n": "a"}, "batch body")
        check(by_path["a"]["headers"].get("x-n") == "a", "batch headers forwarded")
        client.queue.delete("contract-batch-queue")

    @scenario
    def url_groups() -> None:
        group = "contract-group"
        client.url_group.upsert_endpoints(
            url_group=group,
            endpoints=[{"url": url("group/a"), "name": "a"}, {"url": url("group/b")}],
        )
        got = client.url_group.get(group)
        check(got.name == group, "group name")
        check(sorted(e.url for e in got.endpoints) == [url("group/a"), url("group/b")], "urls")
        check(group in [g.name for g in client.url_group.list()], "group listed")
        answers = client.message.publish_json(url_group=group, body={"fan": "out"})
        check(len(answers) == 2, "one message per endpoint", answers=str(answers))
        check(sorted(a.url for a in answers) == [url("group/a"), url("group/b")], "answer urls")
        delivered = wait_for("group/", count=2)
        check(all(json.loads(r["body"]) == {"fan": "out"} for r in delivered), "bodies")
        client.url_group.remove_endpoints(url_group=group, endpoints=[{"url": url("group/b")}])
        check([e.url for e in client.url_group.get(group).endpoints] == [url("group/a")], "rm")
        client.url_group.delete(group)
        raises(lambda: client.url_group.get(group), QStashError)

    @scenario
    def schedules() -> dict[str, Any]:
        dest = url("scheduled")
        schedule_id = client.schedule.create_json(
            destination=dest,
            cron="*/5 * * * *",
            body={"every": "5m"},
            headers={"x-s": "1"},
            retries=1,
            callback=url("schedule-cb"),
        )
        check(isinstance(schedule_id, str) and schedule_id, "schedule id")
        got = client.schedule.get(schedule_id)
        check(got.schedule_id == schedule_id, "schedule get id")
        check(got.destination == dest, "schedule destination", dest=got.destination)
        check(got.cron == "*/5 * * * *", "schedule cron", cron=got.cron)
        check(json.loads(got.body or "null") == {"every": "5m"}, "schedule body", b=got.body)
        check(got.retries == 1, "schedule retries")
        check(got.callback == url("schedule-cb"), "schedule callback")
        check(not got.paused, "not paused")
        check(schedule_id in [s.schedule_id for s in client.schedule.list()], "listed")
        client.schedule.pause(schedule_id)
        check(client.schedule.get(schedule_id).paused, "paused")
        client.schedule.resume(schedule_id)
        check(not client.schedule.get(schedule_id).paused, "resumed")
        client.schedule.delete(schedule_id)
        raises(lambda: client.schedule.get(schedule_id), QStashError)
        return {"schedule_id": schedule_id}

    @scenario
    def signing_keys_rotate() -> dict[str, str]:
        keys = client.signing_key.get()
        check(keys.current == CURRENT_KEY and keys.next == NEXT_KEY, "the dev server's keys")
        rotated = client.signing_key.rotate()
        check(rotated.current == NEXT_KEY, "next becomes current", rotated=str(rotated))
        check(rotated.next not in (CURRENT_KEY, NEXT_KEY), "a fresh next key")
        check(client.signing_key.get().current == rotated.current, "rotation kept")
        dest = url("after-rotation")
        client.message.publish_json(url=dest, body={"rotated": True})
        [req] = wait_for("after-rotation")
        fresh = Receiver(current_signing_key=rotated.current, next_signing_key=rotated.next)
        verify(fresh, req, dest)
        stale = Receiver(current_signing_key=CURRENT_KEY, next_signing_key=CURRENT_KEY)
        raises(
            lambda: stale.verify(
                signature=req["headers"]["upstash-signature"], body=req["body"], url=dest
            ),
            SignatureError,
        )
        return {"current": rotated.current}
