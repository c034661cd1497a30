"""What the browser tests do when Debian's chromium is missing: install it as root, fail under
CI=true, skip elsewhere with what to install. The real install path runs on a fresh machine."""

from __future__ import annotations

import browser_setup
import pytest

CONFTEST = """
import pytest
from browser_setup import require_chromium

@pytest.fixture
def chromium():
    return require_chromium()
"""


@pytest.fixture
def no_browser(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(browser_setup, "CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setattr(browser_setup, "_is_root", lambda: False)


@pytest.mark.usefixtures("no_browser")
def test_missing_browser_skips_with_what_to_install(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile("def test_page(chromium): pass")
    result = pytester.runpytest("-rs", "-p", "no:randomly")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*apt-get install -y chromium*"])


@pytest.mark.usefixtures("no_browser")
def test_missing_browser_fails_under_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile("def test_page(chromium): pass")
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*apt-get install -y chromium*"])


def test_root_installs_the_browser_once_under_a_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    installed: list[bool] = []

    class Done:
        returncode = 0
        stderr = ""

    def run(cmd: list[str], **kwargs: object) -> Done:
        calls.append(cmd)
        if cmd[:2] == ["apt-get", "install"]:
            installed.append(True)
        return Done()

    monkeypatch.setattr(browser_setup, "CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setattr(browser_setup, "_is_root", lambda: True)
    monkeypatch.setattr(browser_setup.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(browser_setup.subprocess, "run", run)
    real_exists = browser_setup.os.path.exists
    monkeypatch.setattr(
        browser_setup.os.path,
        "exists",
        lambda p: bool(installed) if p == "/nonexistent/chromium" else real_exists(p),
    )
    assert browser_setup.ensure_chromium() == ("/nonexistent/chromium", "")
    assert calls == [
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
    ]
