"""Seeded state: a TOML or YAML file applied at start, the same state however often applied."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from devserver_helpers import DEV_TOKEN, free_port, start_dev, stop
from helpers import requests_to
from pytest_httpserver import HTTPServer
from qstash import QStash, Receiver
from qstash_emulator import Emulator
from qstash_emulator.devserver.config import ConfigError, Seeder, apply_config, load_config
from qstash_emulator.devserver.remote import Remote
from qstash_emulator.http.schedules import _schedule_json as schedule_json

FIXTURES = Path(__file__).parents[2] / "fixtures" / "config"


def snapshot(emu: Emulator) -> dict[str, Any]:
    """Everything a config can declare, as plain data."""
    out: dict[str, Any] = {
        "rewrites": list(emu.delivery.rewrites),
        "limits": (emu.limits.default, {u.name: emu.limits.config(u.name) for u in emu.users}),
        "llm": [repr(rule) for rule in emu.llm.rules],
    }
    for user in emu.users:
        out[user.name] = {
            "keys": (user.token, user.current_signing_key, user.next_signing_key),
            "quota": user.quota.name,
            "queues": [emu.queues.json(user, q) for q in emu.queues.all(user)],
            "groups": [g.json() for g in emu.url_groups.all(user)],
            "schedules": [schedule_json(s) for s in emu.schedules.list(user)],
        }
    return out


@pytest.mark.parametrize("name", ["dev.toml", "dev.yaml"])
def test_a_config_applied_twice_gives_the_same_state(emu: Emulator, name: str) -> None:
    config = load_config(FIXTURES / name)
    before = snapshot(emu)
    seeder = Seeder(emu)
    emu.call_soon(seeder.apply, config)
    once = snapshot(emu)
    assert once != before
    emu.advance("1m")  # time passing between applies changes nothing either
    emu.call_soon(seeder.apply, config)
    assert snapshot(emu) == once
    emu.call_soon(seeder.apply, load_config(FIXTURES / name))  # re-read from the file
    assert snapshot(emu) == once


def test_the_example_declares_what_it_says(emu: Emulator) -> None:
    emu.call_soon(apply_config, emu, FIXTURES / "dev.toml")
    alice = emu.users["alice"]
    assert (alice.token, alice.quota.name, emu.user.quota.name) == (
        "alice-local-token",
        "payg",
        "pro",
    )
    client = QStash(emu.token, base_url=emu.url)
    assert [(q.name, q.parallelism) for q in client.queue.list()] == [("emails", 2)]
    alice_client = QStash("alice-local-token", base_url=emu.url)
    [reports] = alice_client.queue.list()
    assert (reports.name, reports.paused) == ("reports", True)
    group = client.url_group.get("order-events")
    assert [(e.name, e.url) for e in group.endpoints] == [
        ("billing", "https://myapp.example.com/billing"),
        (None, "https://myapp.example.com/shipping"),
    ]
    nightly = client.schedule.get("nightly-report")
    assert (nightly.cron, nightly.body, nightly.retries) == (
        "CRON_TZ=Europe/Istanbul 0 3 * * *",
        '{"kind":"nightly"}',
        2,
    )
    assert client.schedule.get("fanout-tick").paused
    assert emu.limits.config("alice").daily_messages == 500
    assert emu.limits.default.burst == 200
    assert {rule.name for rule in emu.llm.rules} >= {"weather-tool-call", "greeting"}


def test_seeded_schedules_deliver_through_seeded_rewrites(
    emu: Emulator, httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/report").respond_with_data("ok")
    local = httpserver.url_for("/").rstrip("/")
    config = tmp_path / "seed.yaml"
    config.write_text(
        f"""
rewrites:
  - {{from: "https://myapp.example.com", to: "{local}"}}
schedules:
  - cron: "0 * * * *"
    destination: https://myapp.example.com/report
    body: hello
"""
    )
    emu.call_soon(apply_config, emu, config)
    [schedule] = emu.schedules.list(emu.user)
    assert schedule.id.startswith("scd_")  # derived from the entry: stable across applies
    emu.advance("1h")
    [request] = requests_to(httpserver, "/report")
    assert request.get_data() == b"hello"
    receiver = Receiver(emu.user.current_signing_key, emu.user.next_signing_key)
    receiver.verify(  # signed for the URL the schedule names, delivered to the local one
        signature=request.headers["Upstash-Signature"],
        body="hello",
        url="https://myapp.example.com/report",
    )


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("queues = [{name = 'a b'}]", "queues[0].name: invalid queue name"),
        ("queues = [{name = 'q', parallelism = 0}]", "queues[0].parallelism"),
        ("colour = 'blue'", "top level: unknown keys ['colour']"),
        ("quota = 'gold'", "quota: one of ['payg', 'pro']"),
        ("[[schedules]]\ncron = 'every day'\ndestination = 'x'", "schedules[0].cron"),
        ("[[schedules]]\ncron = '* * * * *'", "schedules[0].destination"),
        ("url_groups = [{name = 'g', endpoints = ['ftp://x']}]", "url_groups[0].endpoints[0]"),
        ("rewrites = {'https://a.example' = 'nope'}", "rewrites['https://a.example']"),
        ("[limits]\ndaily_messages = -1", "limits.daily_messages"),
        ("llm_scripts = ['missing.yaml']", "llm_scripts[0]"),
        ("queues = [", "not valid TOML"),
    ],
)
def test_bad_configs_are_refused_naming_the_entry(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert error in str(info.value)


def test_apply_errors_name_the_file_and_leave_users_alone(emu: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "clash.toml"
    path.write_text("[[users]]\nname = 'defaultUser'\ntoken = 'another'\n")
    with pytest.raises(ConfigError, match="defaultUser exists with another token"):
        emu.call_soon(apply_config, emu, path)
    assert emu.users["defaultUser"].token == DEV_TOKEN
    path.write_text("[[queues]]\nname = 'q'\nuser = 'nobody'\n")
    with pytest.raises(ConfigError, match="no such user 'nobody'"):
        emu.call_soon(apply_config, emu, path)


def test_dev_server_applies_the_config_at_start_and_after_every_reset() -> None:
    proc, port, banner = start_dev(
        "--clock", "virtual", "--config", str(FIXTURES / "dev.toml"), "--quiet"
    )
    try:
        base = f"http://127.0.0.1:{port}"
        assert any(line.startswith("Seeded state from") for line in banner)
        assert 'QSTASH_TOKEN="alice-local-token"' in banner
        client = QStash(DEV_TOKEN, base_url=base)
        client.queue.delete("emails")
        client.schedule.pause("nightly-report")
        Remote(base).reset()
        assert [q.name for q in client.queue.list()] == ["emails"]
        assert not client.schedule.get("nightly-report").paused
        assert len(client.schedule.list()) == 2
        unauthorized = httpx.get(f"{base}/v2/queues", headers={"Authorization": "Bearer x"})
        assert unauthorized.status_code == 401
    finally:
        stop(proc)


def test_dev_server_refuses_a_bad_config(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("queues: [{name: 'a b'}]\n")
    port = str(free_port())
    dev = [sys.executable, "-m", "qstash_emulator", "dev", "--in-memory", "--port", port]
    done = subprocess.run(
        [*dev, "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "queues[0].name: invalid queue name" in done.stderr
