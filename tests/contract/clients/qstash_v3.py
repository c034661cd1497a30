"""The newest `qstash` 3.x against a standalone emulator: `python qstash_v3.py [scenario ...]`."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import qstash
from _contract import (
    CURRENT_KEY,
    NEXT_KEY,
    QSTASH_URL,
    TOKEN,
    check,
    eventually,
    main,
    scenario,
    url,
    wait_for,
)
from _qstash_fidelity import register as register_fidelity
from _qstash_shared import register, verify
from qstash import AsyncQStash, QStash, Receiver
from qstash.chat import custom

# Any: the scripts read the answers of one destination kind at a time.
client: Any = QStash(TOKEN, base_url=QSTASH_URL, retry=False)


def logs(message_id: str) -> list[str]:
    entries = client.log.list(filter={"message_id": message_id}).logs
    return [e.state.value for e in reversed(entries)]


@scenario
def version() -> str:
    check(qstash.__version__.startswith("3."), "a 3.x client", version=qstash.__version__)
    return qstash.__version__


@scenario
def logs_filters_and_labels() -> dict[str, Any]:
    res = client.message.publish_json(url=url("labelled"), body={}, label="contract-label")
    wait_for("labelled")
    found = eventually(
        lambda: [
            e
            for e in client.log.list(filter={"label": "contract-label"}).logs
            if e.state.value == "DELIVERED"
        ],
        "a DELIVERED log with the label",
    )
    check(found[0].message_id == res.message_id, "filtered by label")
    page = client.log.list(count=1)
    check(len(page.logs) == 1 and page.cursor, "count and cursor", cursor=page.cursor)
    following = client.log.list(count=1, cursor=page.cursor)
    check(following.logs and following.logs[0] != page.logs[0], "the cursor moves on")
    return {"cursor": page.cursor}


@scenario
def schedule_upsert_by_id() -> dict[str, Any]:
    client.queue.upsert("contract-schedule-queue", parallelism=1)
    first = client.schedule.create(
        destination=url("s1"), cron="0 * * * *", schedule_id="contract-schedule"
    )
    check(first == "contract-schedule", "the given schedule id", got=first)
    again = client.schedule.create_json(
        destination=url("s2"),
        cron="30 * * * *",
        body={"v": 2},
        schedule_id="contract-schedule",
        queue="contract-schedule-queue",
        flow_control={"key": "contract-schedule-fc", "parallelism": 2},
        label="contract-schedule-label",
    )
    check(again == first, "same id on update")
    got = client.schedule.get(first)
    check(got.destination == url("s2") and got.cron == "30 * * * *", "replaced", s=str(got))
    check(got.queue == "contract-schedule-queue", "queue kept", queue=got.queue)
    check(
        got.flow_control and got.flow_control.key == "contract-schedule-fc",
        "flow control kept",
        fc=str(got.flow_control),
    )
    check(got.label == "contract-schedule-label", "label kept", label=got.label)
    ids = [s.schedule_id for s in client.schedule.list()]
    check(ids.count(first) == 1, "one schedule under the id", ids=ids)
    client.schedule.delete(first)
    client.queue.delete("contract-schedule-queue")
    return {"schedule": str(got)}


@scenario
def batch_url_group_and_redaction() -> dict[str, Any]:
    group = "contract-batch-group"
    client.url_group.upsert_endpoints(
        url_group=group, endpoints=[{"url": url("bg/a")}, {"url": url("bg/b")}]
    )
    answers = client.message.batch_json(
        [
            {"url_group": group, "body": {"to": "group"}},
            {"url": url("bg/single"), "body": {"to": "one"}, "headers": {"X-Secret": "s3"}},
        ]
    )
    check(len(answers) == 2 and isinstance(answers[0], list), "nested answer", a=str(answers))
    check(sorted(a.url for a in answers[0]) == [url("bg/a"), url("bg/b")], "group answer urls")
    wait_for("bg/", count=3)
    secret = client.message.publish_json(
        url=url("redacted"),
        body={"card": "4242"},
        headers={"X-Secret": "s3"},
        delay="1h",
        redact={"body": True, "header": ["X-Secret"]},
    )
    message = client.message.get(secret.message_id)
    check("4242" not in (message.body or ""), "body redacted", body=message.body)
    shown = {k.lower(): v for k, v in (message.headers or {}).items()}
    check(shown.get("x-secret") != ["s3"], "header redacted", headers=message.headers)
    client.message.cancel(secret.message_id)
    client.url_group.delete(group)
    return {"body": message.body, "headers": message.headers}


@scenario
def flow_control() -> dict[str, Any]:
    key = "contract-fc"
    client.message.publish_json(
        url=url("fc/first"),
        body={},
        flow_control={"key": key, "parallelism": 1, "rate": 5, "period": "1s"},
    )
    wait_for("fc/first")
    info = client.flow_control.get(key)
    check(info.key == key, "flow control key", info=str(info))
    check(info.parallelism_max == 1 and info.rate_max == 5, "limits", info=str(info))
    check(info.rate_period == 1, "rate period in seconds", info=str(info))
    everyone = client.flow_control.get_global_parallelism()
    check(everyone.parallelism_max >= 0, "global parallelism", info=str(everyone))
    client.flow_control.pause(key)
    check(client.flow_control.get(key).is_paused, "paused")
    client.message.publish_json(
        url=url("fc/held"), body={}, flow_control={"key": key, "parallelism": 1}
    )
    client.flow_control.resume(key)
    wait_for("fc/held")
    client.flow_control.pin(key, {"parallelism": 3})
    pinned = client.flow_control.get(key)
    check(pinned.is_pinned_parallelism and pinned.parallelism_max == 3, "pin", p=str(pinned))
    client.flow_control.unpin(key, {"parallelism": True})
    check(not client.flow_control.get(key).is_pinned_parallelism, "unpin")
    client.flow_control.reset_rate(key)
    return {"info": str(info)}


@scenario
def async_client() -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        aclient: Any = AsyncQStash(TOKEN, base_url=QSTASH_URL, retry=False)
        dest = url("async")
        res = await aclient.message.publish_json(url=dest, body={"async": True})
        [req] = await asyncio.to_thread(wait_for, "async")
        verify(Receiver(current_signing_key=CURRENT_KEY, next_signing_key=NEXT_KEY), req, dest)
        keys = await aclient.signing_key.get()
        check(keys.current == CURRENT_KEY, "async signing keys")
        await aclient.queue.upsert("contract-async-queue", parallelism=1)
        queued = await aclient.message.enqueue_json(
            queue="contract-async-queue", url=url("async-queued"), body={}
        )
        await asyncio.to_thread(wait_for, "async-queued")
        await aclient.queue.delete("contract-async-queue")
        dead = await aclient.message.publish_json(
            url=url("status/500/async-dead"), body={}, retries=0
        )

        async def dlq_has() -> bool:
            found = await aclient.dlq.list(filter={"message_id": dead.message_id})
            return bool(found.messages)

        for _ in range(400):
            if await dlq_has():
                break
            await asyncio.sleep(0.05)
        check(await dlq_has(), "async DLQ list")
        return {"message_id": res.message_id, "queued": queued.message_id}

    return asyncio.run(run())


@scenario
def llm_publish_via_custom_provider() -> dict[str, Any]:
    """3.x publishes to an LLM through a provider's base URL: the emulator's own LLM API."""
    provider = custom(base_url=f"{QSTASH_URL}/llm", token=TOKEN)
    res = client.message.publish_json(
        api={"name": "llm", "provider": provider},
        body={
            "model": "meta-llama/Meta-Llama-3-8B-Instruct",
            "messages": [{"role": "user", "content": "What is the capital of Turkey?"}],
        },
        callback=url("llm-cb"),
    )
    [cb] = wait_for("llm-cb")
    body = json.loads(cb["body"])
    check(body.get("status") == 200, "the LLM call succeeded", body=body)
    check(body.get("sourceMessageId") == res.message_id, "callback source")
    completion: dict[str, Any] = json.loads(base64.b64decode(body["body"]))
    check(completion.get("object") == "chat.completion", "a chat completion", c=completion)
    check(completion["choices"][0]["message"]["content"], "with content")
    return completion


@scenario
def labels_first_label() -> dict[str, Any]:
    """Item 4: with several labels the deprecated `label` is the first one, everywhere."""
    pending = client.message.publish_json(
        url=url("labels"), body={}, delay="1h", label="first,second"
    )
    check(client.message.get(pending.message_id).label == "first", "message label")
    [log] = client.log.list(filter={"message_id": pending.message_id}).logs
    check(log.label == "first", "log label", label=log.label)
    client.message.cancel(pending.message_id)
    dead = client.message.publish_json(
        url=url("status/500/labels"), body={}, retries=0, label="first,second"
    )
    entry = eventually(
        lambda: client.dlq.list(filter={"message_id": dead.message_id}).messages, "DLQ entry"
    )[0]
    check(entry.label == "first", "DLQ label", label=entry.label)
    return {"label": entry.label}


@scenario
def log_fields() -> dict[str, Any]:
    """Item 5: log entries carry the retry-delay expression, flow control and label."""
    key = "contract-log-fc"
    res = client.message.publish_json(
        url=url("log-fields"),
        body={"x": 1},
        retry_delay="1000 * retried",
        flow_control={"key": key, "parallelism": 2, "rate": 10, "period": "1m"},
        label="log-label",
    )
    wait_for("log-fields")
    entries = eventually(
        lambda: (
            (e := client.log.list(filter={"message_id": res.message_id}).logs)
            and any(x.state.value == "DELIVERED" for x in e)
            and e
        ),
        "the DELIVERED log",
    )
    for entry in entries:
        fc = entry.flow_control
        check(entry.retry_delay_expression == "1000 * retried", "expression", e=str(entry))
        check(fc is not None and fc.key == key, "flow control key", fc=str(fc))
        check((fc.parallelism, fc.rate, fc.period) == (2, 10, 60), "limits", fc=str(fc))
        check(entry.label == "log-label", "label", label=entry.label)
    return {"states": [e.state.value for e in entries]}


@scenario
def flow_control_period_default() -> dict[str, Any]:
    """Item 7: period is 1 (second) by default wherever a flow control is shown."""
    fc = {"key": "contract-fc-period", "parallelism": 3}
    schedule_id = client.schedule.create_json(
        destination=url("fc-period-s"), cron="0 0 * * *", body={}, flow_control=fc
    )
    shown = client.schedule.get(schedule_id).flow_control
    check(shown.period == 1 and shown.rate is None, "schedule", fc=str(shown))
    client.schedule.delete(schedule_id)
    pending = client.message.publish_json(
        url=url("fc-period-m"), body={}, delay="1h", flow_control=fc
    )
    shown = client.message.get(pending.message_id).flow_control
    check(shown.period == 1 and shown.rate is None, "message", fc=str(shown))
    check(shown.parallelism == 3, "parallelism", fc=str(shown))
    [entry] = client.message.batch_json(
        [{"url": url("fc-period-b"), "body": {}, "delay": "1h", "flow_control": fc}]
    )
    shown = client.message.get(entry.message_id).flow_control
    check(shown.period == 1 and shown.rate is None, "batch entry", fc=str(shown))
    client.message.cancel_many([pending.message_id, entry.message_id])
    return {"flow_control": str(shown)}


register(client, logs)
register_fidelity(client, logs)

if __name__ == "__main__":
    main()
