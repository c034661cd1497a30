"""Message ids never repeat across a restart of the standalone server; seeded ids stay
deterministic (issue 11, item 5)."""

from __future__ import annotations

import httpx
from qstash_emulator import Emulator
from test_cli import free_port, start


def first_ids(**options: object) -> list[str]:
    with Emulator(**options) as emu:  # type: ignore[arg-type]
        url = f"{emu.url}/__capture/ids"
        return [
            httpx.post(
                f"{emu.url}/v2/publish/{url}?n={n}",
                headers={"Authorization": f"Bearer {emu.token}"},
            ).json()["messageId"]
            for n in range(3)
        ]


def test_a_real_clock_gives_new_ids_after_a_restart() -> None:
    before, after = first_ids(clock="real"), first_ids(clock="real")
    assert not set(before) & set(after)


def test_a_seed_keeps_ids_deterministic_on_either_clock() -> None:
    assert first_ids(clock="real", seed=7) == first_ids(clock="real", seed=7)
    assert first_ids() == first_ids()  # in-process, virtual clock: seed 0
    assert first_ids(seed=0) == first_ids()


def test_a_reset_on_a_real_clock_does_not_reuse_ids() -> None:
    with Emulator(clock="real") as emu:
        auth = {"Authorization": f"Bearer {emu.token}"}
        url = f"{emu.url}/v2/publish/{emu.url}/__capture/r"
        one = httpx.post(url, headers=auth).json()["messageId"]
        emu.reset()
        two = httpx.post(url, headers=auth).json()["messageId"]
        assert one != two


def test_the_dev_server_restarted_gives_new_ids() -> None:
    ids = []
    for _ in range(2):
        port = free_port()
        proc, banner = start(f"--port={port}")
        try:
            token = next(line for line in banner if line.startswith("QSTASH_TOKEN"))
            answer = httpx.post(
                f"http://127.0.0.1:{port}/v2/publish/http://127.0.0.1:{port}/__capture/x",
                headers={"Authorization": f"Bearer {token.split('=', 1)[1].strip(chr(34))}"},
            )
            ids.append(answer.json()["messageId"])
        finally:
            proc.terminate()
            proc.wait(10)
    assert ids[0] != ids[1]
