"""Fixtures of the contract suite: the recording target and the client runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from contract_runs import Runs
from contract_servers import Target


@pytest.fixture(scope="session")
def contract_target() -> Iterator[Target]:
    target = Target().start()
    yield target
    target.stop()


@pytest.fixture(scope="session")
def contract_runs(contract_target: Target) -> Iterator[Runs]:
    runs = Runs(contract_target)
    yield runs
    runs.close()
