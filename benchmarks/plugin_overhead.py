"""Per-test cost of the pytest plugin's fixtures, beside in-run anchors.

One in-process pytest session runs generated tests in interleaved rounds (so machine drift hits
every kind alike; the httpserver anchor, which idles, runs its rounds after the others) and
records pytest's own phase durations (setup + call + teardown):

* baseline      - an empty test, no fixture (pytest's own per-test cost, subtracted below)
* default       - an empty test using `qstash` (the session server, reset for the test)
* fresh         - an empty test using `qstash_fresh` (a server started and stopped for it)
* httpserver    - ANCHOR: an empty test whose fixture starts and stops a pytest-httpserver
                  `HTTPServer` (what a test pays for a server of its own)
* publish       - a whole test: publish with the official SDK to a capture URL, then
                  `assert_delivered(...)` (which checks the signature)
* publish_http  - the same, delivered to the session's pytest-httpserver endpoint
* moto          - ANCHOR: a whole test with moto's `mock_aws`: create an SQS queue, send one
                  message, receive it

Fixture costs are net of the baseline; whole tests are reported as they are (pytest's own cost
included) and net. Aims: default < 0.2 ms, fresh < 5 ms, publish test < 10 ms.

    .venv/bin/python benchmarks/plugin_overhead.py [--rounds 60] [--json] [--check]

Needs pytest-httpserver and (for the moto anchor) `moto[sqs]`; a missing anchor is reported
as skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

AIMS_MS = {"default": 0.2, "fresh": 5.0, "publish": 10.0}
WARMUP_ROUNDS = 5
HTTPSERVER_ROUNDS = 20  # each one idles ~0.5 s: enough for a stable median

TESTS = """
import pytest

ROUNDS = {rounds}
HTTPSERVER_ROUNDS = {httpserver_rounds}


@pytest.fixture
def own_httpserver():
    from pytest_httpserver import HTTPServer

    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_available():
    try:
        import boto3  # noqa: F401
        from moto import mock_aws  # noqa: F401
    except ImportError:
        return False
    return True


def make(r):
    def test_baseline():
        pass

    def test_default(qstash):
        pass

    def test_fresh(qstash_fresh):
        pass

    def test_httpserver(own_httpserver):
        pass

    def test_publish(qstash, qstash_client):
        hook = qstash.capture("hook")
        qstash_client.message.publish_json(url=hook.url, body={{"n": r}})
        qstash.assert_delivered(hook, json={{"n": r}}, times=1)

    def test_publish_http(qstash, qstash_client, httpserver):
        httpserver.expect_request("/hook").respond_with_data("ok")
        url = httpserver.url_for("/hook")
        qstash_client.message.publish_json(url=url, body={{"n": r}})
        qstash.assert_delivered(url, json={{"n": r}}, times=1)

    def test_moto(moto_available):
        if not moto_available:
            pytest.skip("moto[sqs] is not installed")
        import boto3
        from moto import mock_aws

        with mock_aws():
            sqs = boto3.client("sqs", region_name="us-east-1")
            queue = sqs.create_queue(QueueName="q")["QueueUrl"]
            sqs.send_message(QueueUrl=queue, MessageBody='{{"n": %d}}' % r)
            [message] = sqs.receive_message(QueueUrl=queue)["Messages"]
            assert message["Body"] == '{{"n": %d}}' % r

    return [test_baseline, test_default, test_fresh, test_publish, test_publish_http, test_moto,
            test_httpserver]


# The httpserver anchor idles ~0.5 s in its stop (werkzeug's poll interval): run its rounds
# after the others, so the idle CPU it leaves behind does not slow the next measured test.
_all = [make(_r) for _r in range(ROUNDS)]
for _r, _tests in enumerate(_all):
    for _test in _tests[:-1]:
        globals()[f"{{_test.__name__}}_{{_r:04d}}"] = _test
for _r, _tests in enumerate(_all[:HTTPSERVER_ROUNDS]):
    globals()[f"test_httpserver_{{_r:04d}}"] = _tests[-1]
"""

KINDS = ["baseline", "default", "fresh", "httpserver", "publish", "publish_http", "moto"]


class Collector:
    """Sums each test's phase durations, by kind, skipping the warm-up rounds."""

    def __init__(self) -> None:
        self.totals: dict[str, dict[int, float]] = defaultdict(dict)
        self.phases: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.skipped: set[str] = set()
        self.failed: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        name = report.nodeid.rsplit("::", 1)[-1]
        kind, _, round_text = name[len("test_") :].rpartition("_")
        r = int(round_text)
        if report.skipped:
            self.skipped.add(kind)
        if report.failed:
            self.failed.append(f"{report.nodeid} ({report.when})")
        if r < WARMUP_ROUNDS:
            return
        self.totals[kind][r] = self.totals[kind].get(r, 0.0) + report.duration
        self.phases[(kind, report.when)].append(report.duration)


def run(rounds: int) -> dict[str, Any]:
    collector = Collector()
    with tempfile.TemporaryDirectory(prefix="qstash-plugin-bench-") as tmp:
        path = Path(tmp)
        (path / "pytest.ini").write_text(
            "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
        )
        (path / "test_overhead.py").write_text(
            textwrap.dedent(
                TESTS.format(
                    rounds=rounds + WARMUP_ROUNDS,
                    httpserver_rounds=min(rounds, HTTPSERVER_ROUNDS) + WARMUP_ROUNDS,
                )
            )
        )
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            code = pytest.main(
                ["-q", "-p", "no:cacheprovider", "-p", "no:randomly", str(path)],
                plugins=[collector],
            )
        finally:
            os.chdir(cwd)
    if collector.failed:
        raise SystemExit(f"benchmark tests failed (exit {code}): {collector.failed[:5]}")
    medians = {
        kind: statistics.median(values.values()) * 1000
        for kind, values in collector.totals.items()
        if kind not in collector.skipped
    }
    base = medians["baseline"]
    net = {kind: value - base for kind, value in medians.items()}
    ratios = {}
    if "httpserver" in net:
        ratios["default / httpserver start+stop"] = net["default"] / net["httpserver"]
        ratios["fresh / httpserver start+stop"] = net["fresh"] / net["httpserver"]
    if "moto" in medians:
        ratios["publish test / moto SQS test"] = medians["publish"] / medians["moto"]
        ratios["publish_http test / moto SQS test"] = medians["publish_http"] / medians["moto"]
    measured = {"default": net["default"], "fresh": net["fresh"], "publish": medians["publish"]}
    return {
        "rounds": rounds,
        "median_ms": medians,
        "net_of_baseline_ms": net,
        "ratios": ratios,
        "aims_ms": AIMS_MS,
        "met": {k: measured[k] < aim for k, aim in AIMS_MS.items()},
        "skipped": sorted(collector.skipped),
        "phase_median_ms": {
            f"{kind}.{when}": statistics.median(v) * 1000
            for (kind, when), v in sorted(collector.phases.items())
        },
    }


def table(result: dict[str, Any]) -> str:
    med, net = result["median_ms"], result["net_of_baseline_ms"]
    lines = [
        f"pytest plugin per-test cost: {result['rounds']} rounds (+{WARMUP_ROUNDS} warm-up), "
        "medians of setup+call+teardown",
        "",
        f"{'test':<14}{'whole ms':>10}{'net ms':>10}  what",
    ]
    what = {
        "baseline": "empty test, no fixture",
        "default": "`qstash` (shared server, reset)        aim < 0.2 ms net",
        "fresh": "`qstash_fresh` (own server)            aim < 5 ms net",
        "httpserver": "ANCHOR pytest-httpserver start+stop",
        "publish": "publish + assert_delivered (capture)   aim < 10 ms whole",
        "publish_http": "publish + assert_delivered (httpserver)",
        "moto": "ANCHOR mock_aws + SQS create/send/receive",
    }
    for kind in KINDS:
        if kind in med:
            lines.append(f"{kind:<14}{med[kind]:>10.3f}{net[kind]:>10.3f}  {what[kind]}")
        else:
            lines.append(f"{kind:<14}{'skipped':>10}{'':>10}  {what[kind]}")
    lines.append("")
    for name, ratio in result["ratios"].items():
        lines.append(f"{name:<36} {ratio:8.4f}")
    lines.append("")
    for name, ok in result["met"].items():
        lines.append(f"aim {name:<10} < {AIMS_MS[name]:g} ms: {'met' if ok else 'MISSED'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=60, help="measured rounds (default 60)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--check", action="store_true", help="exit 1 if an aim is missed")
    args = parser.parse_args(argv)
    result = run(args.rounds)
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 1 if args.check and not all(result["met"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
