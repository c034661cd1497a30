"""What both Python SDK lines (`qstash` 2.0.5 and 3.x) expect of the service the way apps and
the SDKs' own suites use them (issue 10). `register(client, logs)` adds the scenarios."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from _contract import CURRENT_KEY, NEXT_KEY, check, eventually, raises, scenario, url, wait_for
from qstash import Receiver
from qstash.errors import QStashError

Logs = Callable[[str], list[str]]

# Headers the SDK is asked to forward that must never reach the destination verbatim.
RESERVED_FORWARDS = {
    "Content-Length": "3",
    "Transfer-Encoding": "chunked",
    "Connection": "X-Hop",
    "X-Hop": "named by Connection",
    "Keep-Alive": "timeout=5",
    "TE": "trailers",
    "Trailer": "X-Later",
    "Upgrade": "websocket",
    "Proxy-Authorization": "Basic c2VjcmV0",
    "Host": "elsewhere.example",
    "User-Agent": "forwarded-agent",
    # Named in full: 2.0.5 leaves any Upstash-* key unprefixed (it would not be forwarded).
    "Upstash-Forward-Upstash-Signature": "stale.signature.value",
    "Upstash-Forward-Upstash-Message-Id": "msg_forwarded",
    "Upstash-Forward-Upstash-Retried": "7",
    "X-Kept": "yes",
}


def compact(body: str) -> str:
    """What JavaScript's JSON.stringify(JSON.parse(body)) gives."""
    return json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False)


def register(client: Any, logs: Logs) -> None:
    receiver = Receiver(current_signing_key=CURRENT_KEY, next_signing_key=NEXT_KEY)

    @scenario
    def finished_message_readable() -> dict[str, Any]:
        """Item 1: publish, let it be delivered, then read it back by id."""
        res = client.message.publish_json(url=url("finished"), body={"done": True})
        wait_for("finished")
        # The target has the request; the emulator settles once the answer is back.
        eventually(lambda: "DELIVERED" in logs(res.message_id), "DELIVERED log")
        message = client.message.get(res.message_id)
        check(message.message_id == res.message_id, "a delivered message is readable")
        check(message.url == url("finished"), "its url", url=message.url)
        check(json.loads(message.body) == {"done": True}, "its body", body=message.body)
        # Past cancelling: as QStash answers for a message no longer pending.
        raises(lambda: client.message.cancel(res.message_id), QStashError)
        check("CANCEL_REQUESTED" not in logs(res.message_id), "no cancel logged")
        return {"message_id": res.message_id}

    @scenario
    def bulk_cancel_until_zero() -> list[int]:
        """Item 3: cancelling everything, again and again, ends at 0 with nothing left."""
        ids = [
            client.message.publish_json(url=url("bulk"), body={"i": i}, delay="1h").message_id
            for i in range(3)
        ]
        answers = [client.message.cancel_all()]
        while answers[-1] and len(answers) < 10:
            answers.append(client.message.cancel_all())
        check(answers[0] >= 3 and answers[-1] == 0, "cancelled, then nothing", answers=answers)
        for mid in ids:
            raises(functools.partial(client.message.get, mid), QStashError)
        return answers

    @scenario
    def empty_bodies_left_out() -> dict[str, Any]:
        """Item 6: no body, no `"body": ""` in the message or the schedule."""
        res = client.message.publish(url=url("no-body"), delay="1h")
        message = client.message.get(res.message_id)
        check(message.body is None and message.body_base64 is None, "message", m=str(message))
        client.message.cancel(res.message_id)
        schedule_id = client.schedule.create(destination=url("no-body-s"), cron="0 0 * * *")
        schedule = client.schedule.get(schedule_id)
        check(schedule.body is None, "schedule", body=schedule.body)
        client.schedule.delete(schedule_id)
        return {"message": str(message.body), "schedule": str(schedule.body)}

    @scenario
    def url_group_delete_missing() -> None:
        """Item 8: the official suites delete a group before they create it."""
        group = "contract-fresh-group"
        client.url_group.delete(group)
        client.url_group.upsert_endpoints(url_group=group, endpoints=[{"url": url("g")}])
        client.url_group.delete(group)
        client.url_group.delete(group)
        raises(lambda: client.url_group.get(group), QStashError)

    @scenario
    def batch_json_value_bodies() -> dict[str, str]:
        """Item 9: a batch entry's body may be any JSON value; it is sent serialised."""
        values: dict[str, Any] = {
            "object": {"a": 1, "b": [True, None]},
            "array": [1, "two"],
            "number": 3,
            "boolean": False,
            "text": "plain",
        }
        client.message.batch([{"url": url(f"bj/{k}"), "body": v} for k, v in values.items()])
        got = {r["path"].rsplit("/", 1)[-1]: r["body"] for r in wait_for("bj/", len(values))}
        want = {k: v if isinstance(v, str) else compact(json.dumps(v)) for k, v in values.items()}
        check(got == want, "each body serialised", got=got, want=want)
        return got

    @scenario
    def reserved_headers_not_forwarded() -> dict[str, Any]:
        """Item 10: hop-by-hop headers dropped, the emulator's own set once."""
        dest = url("reserved")
        body = json.dumps({"payload": "x" * 40})
        res = client.message.publish(
            url=dest, body=body, content_type="application/json", headers=RESERVED_FORWARDS
        )
        [req] = wait_for("reserved")
        check(req["body"] == body, "the body whole", body=req["body"])
        names = [k for k, _ in req["header_list"]]
        for name in ("upstash-signature", "upstash-message-id", "upstash-retried", "user-agent"):
            check(names.count(name) == 1, f"one {name}", headers=req["header_list"])
        headers = req["headers"]
        check(headers["upstash-message-id"] == res.message_id, "the real message id")
        check(headers["upstash-retried"] == "0", "the real retry count")
        check(headers["user-agent"] == "Upstash-QStash", "QStash's user agent")
        check(headers["content-length"] == str(len(body)), "the real length")
        check(headers["host"] != "elsewhere.example", "the real host")
        for name in ("transfer-encoding", "x-hop", "keep-alive", "te", "trailer", "upgrade"):
            check(name not in headers, f"{name} dropped", headers=headers)
        check("proxy-authorization" not in headers, "proxy headers dropped")
        check(headers.get("x-kept") == "yes", "a plain header forwarded")
        receiver.verify(signature=headers["upstash-signature"], body=req["body"], url=dest)
        return {"headers": names}

    @scenario
    def callback_json_compact() -> str:
        """Item 11: the callback body re-serialises to the same bytes (and signature)."""
        res = client.message.publish_json(
            url=url("cb-src"), body={"ünïcode": "✓"}, callback=url("cb-compact")
        )
        [cb] = wait_for("cb-compact")
        check(compact(cb["body"]) == cb["body"], "compact JSON", body=cb["body"][:200])
        check(json.loads(cb["body"])["sourceMessageId"] == res.message_id, "its source")
        receiver.verify(
            signature=cb["headers"]["upstash-signature"],
            body=compact(cb["body"]),
            url=url("cb-compact"),
        )
        return str(cb["body"][:80])
