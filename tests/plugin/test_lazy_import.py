"""The plugin costs nothing until used: pytest imports `pytest_qstash.plugin` in every run where
the package is installed, so importing it must not pull in the emulator or its dependencies.

Each check runs in a fresh interpreter: this test session has imported everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import pytest_qstash
from pytest_qstash.constants import DEFAULT_QUOTA, QUOTA_TIERS
from qstash_emulator import Emulator
from qstash_emulator.core.quotas import QUOTAS

# Top-level packages only a QStash fixture may bring in (the emulator's dependencies, the SDK).
INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
HEAVY = ("aiohttp", "faker", "croniter", "yaml", "jwt", "qstash", "qstash_emulator", "httpx")


def modules_after(code: str) -> set[str]:
    """The top-level modules a fresh interpreter has loaded after running `code`."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return {name.partition(".")[0] for name in json.loads(result.stdout.splitlines()[-1])}


def test_importing_the_plugin_imports_no_emulator() -> None:
    loaded = modules_after("import pytest_qstash.plugin")
    assert "pytest_qstash" in loaded  # the import did happen
    assert sorted(loaded & set(HEAVY)) == []


def test_the_control_sees_the_heavy_imports() -> None:
    # The check above can fail: the package's exports, once touched, do import the emulator.
    loaded = modules_after("import pytest_qstash\npytest_qstash.QStashHarness")
    assert {"aiohttp", "qstash_emulator"} <= loaded


def test_quota_tiers_match_the_emulator() -> None:
    assert set(QUOTA_TIERS) == set(QUOTAS)
    assert len(QUOTA_TIERS) == len(set(QUOTA_TIERS))
    with Emulator() as emu:
        assert emu.user.quota.name == DEFAULT_QUOTA


def test_exports_load_on_first_use() -> None:
    from pytest_qstash.harness import QStashHarness

    assert pytest_qstash.QStashHarness is QStashHarness
    assert set(pytest_qstash.__all__) <= set(dir(pytest_qstash))
    for name in pytest_qstash.__all__:
        assert getattr(pytest_qstash, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = pytest_qstash.Nope  # type: ignore[attr-defined]


def test_a_run_loads_the_emulator_only_when_a_fixture_runs(pytester: pytest.Pytester) -> None:
    # A subprocess: an in-process inner session shares this process's sys.modules.
    pytester.makeini(INI)
    pytester.makepyfile(
        """
        import sys

        import pytest

        HEAVY = ("aiohttp", "qstash_emulator", "faker", "croniter", "yaml")

        @pytest.mark.qstash(seed=3)
        def test_1_no_fixture(pytestconfig):
            assert pytestconfig.getoption("qstash_quota") == "pro"  # options are registered
            assert [m for m in HEAVY if m in sys.modules] == []

        def test_2_fixture(qstash):
            hook = qstash.capture("hook")
            assert hook.url.startswith("http://127.0.0.1:")
            assert "qstash_emulator" in sys.modules and "aiohttp" in sys.modules
        """
    )
    # Faker's own pytest plugin imports faker: not ours to judge. Hypothesis's is only slow.
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-p",
        "no:faker",
        "-p",
        "no:hypothesispytest",
        "--strict-markers",
        "--qstash-quota",
        "pro",
        "-v",
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_1_no_fixture PASSED*", "*test_2_fixture PASSED*"])


def test_help_and_bad_tier_name_the_tiers(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    result = pytester.runpytest("-p", "no:cacheprovider", "--help")
    assert result.ret == 0
    result.stdout.fnmatch_lines([f"*--qstash-quota=TIER*{', '.join(QUOTA_TIERS)}*"])
    result = pytester.runpytest("-p", "no:cacheprovider", "--qstash-quota", "gold")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*unknown quota tier 'gold' (known: {', '.join(QUOTA_TIERS)})*"])
