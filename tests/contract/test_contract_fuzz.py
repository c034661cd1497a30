"""Bad input: hypothesis sends publish, batch and schedule requests with generated headers and
bodies to an in-process emulator. Whatever arrives: no 5xx; a refusal is QStash's JSON error
and stores nothing; every accepted message is accounted for (still pending, or logged to a
final state) and every accepted schedule exists; and the emulator keeps serving.

Generated URLs only ever point at the local target: free text never contains "http" or "//",
so a destination or callback header cannot name another host.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from contract_servers import Target
from qstash_emulator import Emulator

hypothesis = pytest.importorskip(
    "hypothesis", reason="the fuzz pass needs hypothesis (add it to the [test] extras)"
)
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FINAL = {"DELIVERED", "FAILED", "CANCELED"}
GROUP = "fuzz-group"
QUEUE = "fuzz-queue"


def _local(text: str) -> bool:
    return "http" not in text.lower() and "//" not in text


# Header-safe text (printable ASCII) that can never spell a URL.
text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30).filter(_local)
# h11 sends no header value with leading or trailing blanks.
header_text = text.map(str.strip)
numbers = st.integers(min_value=-(10**12), max_value=10**20).map(str)
# Values QStash takes, and near misses it must refuse.
durations = st.sampled_from(["0", "10s", "5m", "6m5s", "1h", "1d", "2d", "30"])
bad_durations = st.sampled_from(["-5s", "1x", "s", "1.5s", "400d", "99999999d", "", "1d-1h"])
crons = st.sampled_from(
    ["* * * * *", "*/5 * * * *", "0 0 1 1 *", "CRON_TZ=Europe/Istanbul 0 9 * * 1"]
)
bad_crons = st.sampled_from(
    ["61 * * * *", "* * *", "@hourly", "0 0 30 2 *", "CRON_TZ=Nowhere/Else * * * * *", ""]
)
retry_delays = st.sampled_from(["1000", "pow(2, retried) * 1000", "max(10, retried)"])
bad_retry_delays = st.sampled_from(["", "retried +", "1/0", "min(1)", "exp(999999)"])
flow_values = st.sampled_from(["parallelism=1", "rate=10, period=1m", "parallelism=2, rate=5"])
bad_flow_values = st.sampled_from(["parallelism=0", "rate=-1", "period=1s", "x=1", ""])
booleans = st.sampled_from(["true", "false"])
bad_booleans = st.sampled_from(["TRUE", "yes", "1", ""])
methods = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"])
bad_methods = st.sampled_from(["HEAD", "TRACE", "get", "X", ""])


def header_strategies(target: str) -> dict[str, st.SearchStrategy[str]]:
    urls = st.sampled_from([f"{target}/cb", f"{target}/status/500/cb", f"{target}/x?y=1"])
    wild = st.one_of(header_text, numbers)

    def mostly(valid: st.SearchStrategy[str], bad: st.SearchStrategy[str] = wild) -> Any:
        # one_of draws each branch alike: three in four values are ones QStash takes.
        return st.one_of(valid, valid, valid, valid, valid, valid, bad, wild)

    return {
        "Upstash-Delay": mostly(durations, bad_durations),
        "Upstash-Not-Before": mostly(st.integers(0, 2**40).map(str)),
        "Upstash-Retries": mostly(st.integers(0, 5).map(str), st.sampled_from(["-1", "99"])),
        "Upstash-Retry-Delay": mostly(retry_delays, bad_retry_delays),
        "Upstash-Timeout": mostly(durations.filter(lambda d: d != "0"), bad_durations),
        "Upstash-Method": mostly(methods, bad_methods),
        "Upstash-Deduplication-Id": mostly(st.sampled_from(["a", "b", "c"])),
        "Upstash-Content-Based-Deduplication": mostly(booleans, bad_booleans),
        "Upstash-Callback": mostly(urls),
        "Upstash-Failure-Callback": mostly(urls),
        "Upstash-Callback-Retries": mostly(st.integers(0, 5).map(str)),
        "Upstash-Failure-Callback-Delay": mostly(durations, bad_durations),
        "Upstash-Label": mostly(st.sampled_from(["l1", "l2"])),
        "Upstash-Flow-Control-Key": mostly(st.sampled_from(["k1", "k2"])),
        "Upstash-Flow-Control-Value": mostly(flow_values, bad_flow_values),
        "Upstash-Queue-Name": mostly(st.just(QUEUE)),
        "Upstash-Redact-Fields": mostly(st.sampled_from(["body", "header[X]", "body, headers"])),
        "Upstash-Cron": mostly(crons, bad_crons),
        "Upstash-Forward-X-Custom": wild,
        "Upstash-Header-Forward": mostly(booleans, bad_booleans),
        "Content-Type": st.sampled_from(["application/json", "text/plain", "", "x/y; a=b"]),
        "X-Plain": wild,
    }


def headers_strategy(target: str, *, cron: bool) -> st.SearchStrategy[dict[str, str]]:
    choices = header_strategies(target)
    if not cron:
        choices.pop("Upstash-Cron")
    return st.dictionaries(st.sampled_from(sorted(choices)), st.just(""), max_size=5).flatmap(
        lambda keys: st.fixed_dictionaries({k: choices[k] for k in keys})
    )


def destination_strategy(target: str) -> st.SearchStrategy[str]:
    known = st.sampled_from(
        [f"{target}/ok", f"{target}/status/500/no", f"{target}/q?a=1&b=2", GROUP, "nogroup"]
    )
    wild = text.filter(lambda s: s.strip("/") != "" and "?" not in s and "#" not in s)
    return st.one_of(known, known, wild)


bodies = st.one_of(
    st.binary(max_size=200),
    text.map(str.encode),
    st.recursive(
        st.none() | st.booleans() | st.integers() | text,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
        max_leaves=8,
    ).map(lambda v: json.dumps(v).encode()),
)


class Ledger:
    """What the emulator accepted, and a view of what it stores."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.messages: set[str] = set()
        self.schedules: set[str] = set()

    def stored(self) -> tuple[frozenset[str], frozenset[str]]:
        self.emu.settle()
        logged = {e.message.id for e in self.emu.engine.logs(self.emu.user)}
        schedules = {s.id for s in self.emu.schedules.list(self.emu.user)}
        return frozenset(logged), frozenset(schedules)

    def record(self, answer: Any) -> None:
        items = answer if isinstance(answer, list) else [answer]
        for item in items:
            if isinstance(item, list):
                self.record(item)
            elif "scheduleId" in item:
                self.schedules.add(item["scheduleId"])
            else:
                assert isinstance(item.get("messageId"), str), answer
                self.messages.add(item["messageId"])


@pytest.fixture(scope="module")
def fuzz_target() -> Iterator[Target]:
    target = Target().start()
    yield target
    target.stop()


@pytest.fixture(scope="module")
def fuzz_emu(fuzz_target: Target) -> Iterator[tuple[Emulator, httpx.Client, Ledger]]:
    with Emulator(seed=3) as emu:
        http = httpx.Client(
            base_url=emu.url, headers={"Authorization": f"Bearer {emu.token}"}, timeout=30
        )
        http.post(f"/v2/topics/{GROUP}/endpoints", json={"endpoints": [{"url": fuzz_target.url}]})
        http.post("/v2/queues", json={"queueName": QUEUE, "parallelism": 2})
        ledger = Ledger(emu)
        yield emu, http, ledger
        http.close()


FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def send(
    fuzz: tuple[Emulator, httpx.Client, Ledger], method: str, path: str, **kw: Any
) -> httpx.Response:
    _, http, ledger = fuzz
    before = ledger.stored()
    answer = http.request(method, path, **kw)
    assert answer.status_code < 500, (answer.status_code, answer.text)
    if answer.status_code < 300:
        ledger.record(answer.json())
    else:
        assert answer.headers.get("content-type", "").startswith("application/json"), answer.text
        assert isinstance(answer.json().get("error"), str), answer.text
        assert ledger.stored() == before, f"a refused request stored something: {answer.text}"
    return answer


def test_fuzz_publish(fuzz_emu: Any, fuzz_target: Target) -> None:
    @FUZZ
    @given(
        destination=destination_strategy(fuzz_target.url),
        headers=headers_strategy(fuzz_target.url, cron=True),
        body=bodies,
        version=st.sampled_from(["v2", "v1"]),
    )
    def publish(destination: str, headers: dict[str, str], body: bytes, version: str) -> None:
        send(fuzz_emu, "POST", f"/{version}/publish/{destination}", headers=headers, content=body)

    publish()
    assert fuzz_emu[2].messages, "the fuzz pass published nothing: the strategies are off"
    assert_accounted(fuzz_emu, fuzz_target)


def test_fuzz_schedules(fuzz_emu: Any, fuzz_target: Target) -> None:
    @FUZZ
    @given(
        destination=destination_strategy(fuzz_target.url),
        headers=headers_strategy(fuzz_target.url, cron=False),
        cron=st.one_of(crons, crons, bad_crons, header_text),
        body=bodies,
    )
    def schedule(destination: str, headers: dict[str, str], cron: str, body: bytes) -> None:
        headers = {**headers, "Upstash-Cron": cron}
        send(fuzz_emu, "POST", f"/v2/schedules/{destination}", headers=headers, content=body)

    schedule()
    assert fuzz_emu[2].schedules, "the fuzz pass created no schedule: the strategies are off"
    assert_accounted(fuzz_emu, fuzz_target)


def test_fuzz_batch(fuzz_emu: Any, fuzz_target: Target) -> None:
    item = st.fixed_dictionaries(
        {"destination": destination_strategy(fuzz_target.url)},
        optional={
            "headers": headers_strategy(fuzz_target.url, cron=False),
            "body": st.one_of(text, text, st.none(), st.integers()),
            "queue": st.one_of(st.just(QUEUE), text),
        },
    )
    junk = st.one_of(st.none(), st.integers(), text, st.lists(st.integers(), max_size=2))
    items = st.lists(item, min_size=1, max_size=4)
    batches = st.one_of(items, items, items, st.lists(junk, max_size=2), junk)

    @FUZZ
    @given(batch=batches, raw=st.one_of(st.none(), st.none(), st.none(), st.binary(max_size=50)))
    def post_batch(batch: Any, raw: bytes | None) -> None:
        content = raw if raw is not None else json.dumps(batch).encode()
        answer = send(fuzz_emu, "POST", "/v2/batch", content=content)
        if answer.status_code < 300:
            assert isinstance(batch, list) and raw is None
            assert len(answer.json()) == len(batch), "one answer per batch entry"

    post_batch()
    assert_accounted(fuzz_emu, fuzz_target)


def assert_accounted(fuzz: tuple[Emulator, httpx.Client, Ledger], target: Target) -> None:
    """Everything accepted so far is accounted for, and the emulator still serves."""
    emu, http, ledger = fuzz
    emu.settle()
    pending = set(emu.engine.state(emu.user).messages)
    logs = emu.engine.logs(emu.user)
    final = {e.message.id for e in logs if e.state in FINAL}
    created = {e.message.id for e in logs if e.state == "CREATED"}
    lost = ledger.messages - pending - final
    assert not lost, f"accepted messages neither pending nor final: {sorted(lost)[:10]}"
    assert ledger.messages <= created, "every accepted message has its CREATED log"
    schedules = {s.id for s in emu.schedules.list(emu.user)}
    assert ledger.schedules <= schedules, "every accepted schedule exists"
    for message_id in sorted(ledger.messages)[:10]:
        answer = http.get("/v2/logs", params={"messageId": message_id})
        assert answer.status_code == 200 and answer.json()["logs"], message_id
    assert http.get("/v2/keys").status_code == 200
    ok = http.post(f"/v2/publish/{target.url}/after-fuzz", content=b"{}")
    assert ok.status_code == 200, ok.text
