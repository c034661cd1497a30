"""Conformance with the reference OpenAPI file: schemathesis against a standalone emulator.

Every operation of ../shared/reference/qstash-docs/openapi.yaml is one the emulator implements,
and all of them run. schemathesis runs every check it has; the test then sorts the failures:

- REQUIRED checks (server errors, response schemas, content types, response headers, auth,
  resources that vanish or appear) must not fail at all, but for the one DEPARTURE below;
- TOLERATED checks may fail only in the exact way each rule describes (these are the
  deliberate departures the README names);
- EXCLUDED checks are not held against the emulator, for the reason given.

The run and its emulator live in a private network namespace (`unshare -n`), so a generated
destination or callback URL can never send a delivery off this machine.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from contract_envs import ROOT, SCHEMATHESIS
from contract_runs import Runs

SPEC = ROOT.parent / "shared" / "reference" / "qstash-docs" / "openapi.yaml"
DRIVER = Path(__file__).parent / "clients" / "schemathesis_run.py"
MAX_EXAMPLES = "12"
SEED = "20240601"

REQUIRED = {
    "not_a_server_error",
    "response_schema_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "missing_required_header",
    "ignored_auth",
    "use_after_free",
    "ensure_resource_availability",
    "object_level_authorization",
    "max_response_time",
}


@dataclass
class Failure:
    operation: str
    check: str
    message: str
    method: str
    uri: str
    status: int | None
    body: str

    def error_body(self) -> bool:
        try:
            data = json.loads(self.body)
        except ValueError:
            return False
        return isinstance(data, dict) and isinstance(data.get("error"), str)

    def __str__(self) -> str:
        return (
            f"{self.check} on {self.operation}: {self.method} {self.uri} -> {self.status} "
            f"{self.body[:300]!r}\n    {self.message[:400]}"
        )


Rule = Callable[[Failure], bool]

# check -> (rule a failure must satisfy to be tolerated, why the departure is deliberate)
TOLERATED: dict[str, tuple[Rule, str]] = {
    "status_code_conformance": (
        lambda f: f.status in (400, 404, 412, 413) and f.error_body(),
        "the reference lists only the success codes for most operations; like QStash the "
        "emulator answers a bad request 400, an unknown queue/schedule/URL group/flow-control "
        'key/DLQ entry 404, a plan limit 412 or 413, each with QStash\'s {"error": "..."} body',
    ),
    "positive_data_acceptance": (
        lambda f: f.status == 400 and f.error_body(),
        "the reference's schemas are looser than QStash's validation: names must be "
        "[A-Za-z0-9._-], Upstash-Retries/-Timeout/-Delay are capped by the plan, an empty "
        "Upstash-Retry-Delay or endpoint list, count < 1, an unknown cursor or a destination "
        'that is neither a URL nor a URL group are refused with 400 {"error": "..."}',
    ),
    "unsupported_method": (
        lambda f: (
            f.method == "PATCH"
            and f.operation.startswith("POST /v2/schedules/{scheduleId}/")
            and f.status == 200
        ),
        "PATCH /v2/schedules/{id}/pause|resume is accepted besides POST: both official Python "
        "SDK lines send PATCH",
    ),
    "allow_header_conformance": (
        lambda f: (
            f.operation.split(" ", 1)[1].startswith("/v2/schedules/{scheduleId}")
            and f.status == 405
        ),
        "Allow on /v2/schedules/{id}[/pause|/resume] also names POST (the same path serves "
        "POST /v2/schedules/{destination}) and PATCH (sent by the Python SDKs)",
    ),
}

# A REQUIRED check's one deliberate departure (README: "CANCELED").
DEPARTURES: dict[str, tuple[Rule, str]] = {
    "response_schema_conformance": (
        lambda f: '"CANCELED" is not one of' in f.message and "LogEntry" in f.message,
        "log state CANCELED where the reference spells CANCELLED: both official Python SDK "
        "lines parse (and fail without) CANCELED",
    ),
}

EXCLUDED = {
    "negative_data_rejection": (
        "the emulator is lenient where QStash is: out-of-range or null optional filters "
        "(toDate beyond int64, parallelism null = default) are accepted rather than refused; "
        "nothing is half-applied"
    ),
}


def netns_prefix() -> list[str]:
    """`unshare` into a network namespace of our own (as root, or mapped to root)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.fail("the schemathesis run needs `unshare` (util-linux) for a private network")
    for prefix in ([unshare, "-n"], [unshare, "-rn"]):
        if subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
            return prefix
    pytest.fail("cannot create a private network namespace (`unshare -n` / `unshare -rn`)")


def spec_operations() -> set[str]:
    spec = yaml.safe_load(SPEC.read_text())
    methods = {"get", "post", "put", "patch", "delete"}
    return {
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method in item
        if method in methods
    }


def _body(response: dict[str, Any] | None) -> str:
    content = (response or {}).get("content")
    if isinstance(content, dict) and "$base64" in content:
        return base64.b64decode(content["$base64"]).decode("utf-8", "replace")
    return "" if content is None else str(content)


def read_events(path: Path) -> tuple[set[str], list[Failure], int]:
    """Operations tested, every failed check, and the number of checks that ran."""
    tested: set[str] = set()
    failures: list[Failure] = []
    checks_run = 0
    for line in path.read_text().splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if not finished:
            continue
        recorder = finished["recorder"]
        tested.add(recorder["label"])
        for case_id, checks in recorder.get("checks", {}).items():
            interaction = recorder.get("interactions", {}).get(case_id) or {}
            request, response = interaction.get("request") or {}, interaction.get("response")
            for check in checks:
                checks_run += 1
                if check["status"] != "failure":
                    continue
                info = check.get("failure_info", {}).get("failure", {})
                failures.append(
                    Failure(
                        operation=recorder["label"],
                        check=check["name"],
                        message=str(info.get("message", "")),
                        method=str(request.get("method", "")),
                        uri=str(request.get("uri", "")),
                        status=(response or {}).get("status_code"),
                        body=_body(response),
                    )
                )
    return tested, failures, checks_run


def classify(failures: list[Failure]) -> tuple[list[Failure], dict[str, int]]:
    """The failures no rule allows, and a count of the allowed ones per check."""
    bad: list[Failure] = []
    allowed: dict[str, int] = {}
    for failure in failures:
        if failure.check in EXCLUDED:
            allowed[failure.check] = allowed.get(failure.check, 0) + 1
            continue
        rule = TOLERATED.get(failure.check) or DEPARTURES.get(failure.check)
        if rule is not None and rule[0](failure):
            allowed[failure.check] = allowed.get(failure.check, 0) + 1
        else:
            bad.append(failure)
    return bad, allowed


def test_rules_cover_known_checks() -> None:
    assert not (set(TOLERATED) | set(EXCLUDED)) & REQUIRED
    assert set(DEPARTURES) <= REQUIRED


def test_openapi_conformance(contract_runs: Runs, tmp_path: Path) -> None:
    python = contract_runs.env(SCHEMATHESIS)
    assert SPEC.exists(), f"the reference OpenAPI file is missing: {SPEC}"
    work = tmp_path / "schemathesis"
    done = subprocess.run(
        [
            *netns_prefix(),
            str(python),
            str(DRIVER),
            sys.executable,
            str(SPEC),
            str(work),
            MAX_EXAMPLES,
            SEED,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    marker = "SCHEMATHESIS-DONE "
    lines = [line for line in done.stdout.splitlines() if line.startswith(marker)]
    assert lines, f"the schemathesis run did not finish:\n{done.stdout[-4000:]}{done.stderr}"
    summary = json.loads(lines[-1][len(marker) :])
    assert summary["emulator_alive"] and summary["emulator_answered"], done.stdout[-4000:]
    output = Path(summary["output"]).read_text()
    tested, failures, checks_run = read_events(Path(summary["ndjson"]))

    missing = spec_operations() - tested
    assert not missing, f"operations schemathesis did not test: {sorted(missing)}\n{output}"
    assert checks_run > 1000, f"only {checks_run} checks ran:\n{output[-3000:]}"
    bad, allowed = classify(failures)
    assert not bad, (
        f"{len(bad)} failures no departure explains (allowed: {allowed}):\n"
        + "\n".join(str(f) for f in bad[:40])
    )
    server_errors = [f for f in failures if f.check == "not_a_server_error"]
    assert not server_errors
