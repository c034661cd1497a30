"""Harness for the Python client scripts (standard library only: it runs in each SDK's venv).

A script registers scenarios with `@scenario`, and `main()` runs the ones named on the command
line (all by default) one after the other, printing one line
`CONTRACT-RESULTS {"name": {"ok": ..., "detail": ..., "error": ..., "seconds": ...}}`.
The environment gives the emulator (`QSTASH_URL`, `QSTASH_TOKEN`, `QSTASH_*_SIGNING_KEY`) and
the recording target (`CONTRACT_TARGET`, `CONTRACT_PREFIX`).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

QSTASH_URL = os.environ["QSTASH_URL"]
TOKEN = os.environ["QSTASH_TOKEN"]
CURRENT_KEY = os.environ["QSTASH_CURRENT_SIGNING_KEY"]
NEXT_KEY = os.environ["QSTASH_NEXT_SIGNING_KEY"]
TARGET = os.environ["CONTRACT_TARGET"]
PREFIX = os.environ["CONTRACT_PREFIX"]
WAIT = float(os.environ.get("CONTRACT_WAIT", "20"))

Scenario = Callable[[], Any]
SCENARIOS: dict[str, Scenario] = {}
_current: list[str] = []


class ContractFailure(AssertionError):
    pass


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__] = fn
    return fn


def check(condition: object, message: str, **detail: object) -> None:
    if not condition:
        extra = f" {json.dumps(detail, default=repr)}" if detail else ""
        raise ContractFailure(message + extra)


def path(tail: str) -> str:
    """A target path unique to this client and scenario."""
    return f"{PREFIX}/{_current[-1]}/{tail.lstrip('/')}"


def url(tail: str) -> str:
    return TARGET + path(tail)


def received(prefix: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"prefix": prefix})
    with urllib.request.urlopen(f"{TARGET}/__log?{query}", timeout=10) as answer:
        records: list[dict[str, Any]] = json.loads(answer.read())
    return records


def wait_for(tail: str, count: int = 1, timeout: float = WAIT) -> list[dict[str, Any]]:
    """Poll the target until `count` requests to paths starting with `path(tail)` arrived."""
    prefix = path(tail)
    deadline = time.monotonic() + timeout
    while True:
        got = received(prefix)
        if len(got) >= count:
            return got
        if time.monotonic() > deadline:
            raise ContractFailure(f"{len(got)} of {count} deliveries to {prefix} in {timeout}s")
        time.sleep(0.05)


def eventually(probe: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Call `probe` until it returns something truthy (or the deadline passes)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise ContractFailure(f"timed out waiting for {what}; last: {last!r}")
        time.sleep(0.05)


def raises(fn: Callable[[], Any], *kinds: type[BaseException]) -> BaseException:
    try:
        fn()
    except kinds as exc:
        return exc
    raise ContractFailure(f"expected {', '.join(k.__name__ for k in kinds)}")


def main() -> None:
    names = sys.argv[1:] or list(SCENARIOS)
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        start = time.monotonic()
        _current.append(name)
        try:
            if name not in SCENARIOS:
                raise ContractFailure(f"no scenario {name!r}")
            detail = SCENARIOS[name]()
            results[name] = {"ok": True, "detail": detail}
        except Exception as exc:
            results[name] = {
                "ok": False,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=8),
            }
        results[name]["seconds"] = round(time.monotonic() - start, 3)
    print("CONTRACT-RESULTS " + json.dumps(results, default=repr), flush=True)
