"""The plugin as pytest loads it in a user's project: inner sessions run with `pytester`
(in-process; in a subprocess only for xdist)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

INI = """
[pytest]
asyncio_default_fixture_loop_scope = function
{extra}
"""

PUBLISH = """
import json

def test_publish(qstash, qstash_client):
    hook = qstash.capture("hook")
    qstash_client.message.publish_json(url=hook.url, body={"n": 1})
    [d] = qstash.assert_delivered(hook, json={"n": 1})
    print("SNAPSHOT", json.dumps(qstash.snapshot()))
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI.format(extra=""))
    return pytester


# Plugins of other packages that import heavy modules afresh in every inner session.
QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*QUIET, *args)


def snapshots(result: pytest.RunResult) -> list[object]:
    return [
        json.loads(line.split("SNAPSHOT ", 1)[1]) for line in result.outlines if "SNAPSHOT " in line
    ]


def test_fixtures_and_env_restored(project: pytest.Pytester) -> None:
    assert "QSTASH_URL" not in os.environ
    project.makepyfile(
        """
        import os

        def test_uses_emulator(qstash, qstash_client, qstash_receiver, qstash_llm):
            assert os.environ["QSTASH_URL"] == qstash.url
            hook = qstash.capture()
            qstash_client.message.publish(url=hook.url, body="x")
            qstash.assert_delivered(hook, body="x")

        def test_after_it():
            assert "QSTASH_URL" not in os.environ
            assert "QSTASH_TOKEN" not in os.environ
        """
    )
    run(project).assert_outcomes(passed=2)
    assert "QSTASH_URL" not in os.environ


def test_snapshots_are_stable_across_runs_and_follow_the_seed(project: pytest.Pytester) -> None:
    project.makepyfile(PUBLISH)
    first = snapshots(run(project, "-s"))
    second = snapshots(run(project, "-s"))
    seeded = snapshots(run(project, "-s", "--qstash-seed=7"))
    assert first and first == second
    assert seeded[0] != first[0]
    assert seeded[0][0]["body"] == first[0][0]["body"]  # type: ignore[index]
    project.makepyfile(
        PUBLISH.replace(
            "def test_publish", "import pytest\n@pytest.mark.qstash(seed=7)\ndef test_publish"
        )
    )
    assert snapshots(run(project, "-s")) == seeded


def test_failing_assertion_message_in_pytest_output(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        def test_wrong_body(qstash, qstash_client):
            hook = qstash.capture("orders")
            qstash_client.message.publish_json(url=hook.url, body={"id": 2})
            qstash.assert_delivered(hook, json={"id": 1})
        """
    )
    result = run(project)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            '>*qstash.assert_delivered(hook, json={"id": 1})',
            "E*AssertionError: assert_delivered: expected at least one delivery, found 0",
            "E*matching:",
            "E*json = {'id': 1}",
            "E*delivered instead (1):",
            "E*POST http://127.0.0.1:*/__capture/orders*-> 200*",
            "E*differs: json {'id': 2}",
        ]
    )
    # The traceback stops at the test's line: the plugin's frames are hidden.
    assert "harness.py" not in result.stdout.str()


def test_marker_is_registered_and_validated(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import pytest

        @pytest.mark.qstash(seed=3, auto_advance=True)
        def test_ok(qstash):
            assert qstash.settings.seed == 3 and qstash.auto_advance

        @pytest.mark.qstash(colour="red")
        def test_bad(qstash):
            pass
        """
    )
    result = run(project, "--strict-markers")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*unknown @pytest.mark.qstash option 'colour'*"])


def test_class_marker_and_closest_wins(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import pytest

        @pytest.mark.qstash(seed=5, quota="pro")
        class TestGroup:
            def test_inherits(self, qstash):
                assert (qstash.settings.seed, qstash.settings.quota) == (5, "pro")

            @pytest.mark.qstash(seed=6)
            def test_overrides(self, qstash):
                assert (qstash.settings.seed, qstash.settings.quota) == (6, "pro")
        """
    )
    run(project).assert_outcomes(passed=2)


OPTIONS_TEST = """
import pytest
from qstash.errors import QStashError

def test_settings(qstash, qstash_client):
    s = qstash.settings
    assert s.seed == 11 and s.quota == "pro" and s.auto_advance
    assert [u.name for u in s.users] == ["bob"]
    assert qstash.user.quota.name == "pro"
    bob = qstash.client("bob")
    hook = qstash.capture()
    bob.message.publish(url=hook.url, body="from bob", delay="1d")
    with pytest.raises(QStashError):
        bob.message.publish(url=hook.url, body="over the daily limit")
    [d] = qstash.wait_for(hook)  # auto-advance skipped the day
    assert d.time - qstash.started == 86400
"""


def test_command_line_options(project: pytest.Pytester) -> None:
    project.makepyfile(OPTIONS_TEST)
    result = run(
        project,
        "--qstash-seed=11",
        "--qstash-quota=pro",
        "--qstash-user=bob",
        "--qstash-rate-limit=bob:daily_messages=1",
        "--qstash-auto-advance",
    )
    result.assert_outcomes(passed=1)


def test_ini_options(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        INI.format(
            extra="qstash_seed = 11\nqstash_quota = pro\nqstash_users = bob\n"
            "qstash_rate_limits =\n    bob:daily_messages=1\nqstash_auto_advance = true\n"
        )
    )
    pytester.makepyfile(OPTIONS_TEST)
    run(pytester).assert_outcomes(passed=1)


def test_bad_option_is_a_usage_error(project: pytest.Pytester) -> None:
    project.makepyfile("def test_x():\n    pass\n")
    result = run(project, "--qstash-quota=gold")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown quota tier 'gold'*"])


def test_real_time_option(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        def test_wall_clock(qstash, qstash_client):
            assert not qstash.emulator.clock.virtual
            hook = qstash.capture()
            qstash_client.message.publish(url=hook.url, body="x")
            qstash.wait_for(hook, timeout=10)
        """
    )
    run(project, "--qstash-real-time").assert_outcomes(passed=1)


def test_log_option_shows_the_log_of_a_failing_test(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # this run is no xdist worker
    project.makepyfile(
        """
        def test_fails(qstash, qstash_client):
            hook = qstash.capture("h")
            qstash_client.message.publish(url=hook.url, body="x")
            qstash.assert_delivered(hook, body="y")
        """
    )
    result = run(project, "--qstash-log=qstash.log")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- Captured qstash log call -*",
            "[[]2025-01-01T00:00:00.000Z] POST /v2/publish/http://127.0.0.1:*/__capture/h -> 200",
            "[[]2025-01-01T00:00:00.000Z] deliver msg_* POST http://*/__capture/h *-> 200",
        ]
    )
    text = (project.path / "qstash.log").read_text()
    assert "== test_log_option_shows_the_log_of_a_failing_test.py::test_fails" in text
    assert "deliver msg_" in text


def test_llm_script_option(project: pytest.Pytester) -> None:
    project.path.joinpath("script.yaml").write_text(
        "rules:\n  - contains: weather\n    content: Sunny from the script.\n"
    )
    project.makepyfile(
        """
        import httpx
        import pytest

        def ask(qstash):
            return httpx.post(
                f"{qstash.url}/llm/v1/chat/completions",
                headers={"Authorization": f"Bearer {qstash.token}"},
                json={"model": "meta-llama/Meta-Llama-3-8B-Instruct",
                      "messages": [{"role": "user", "content": "weather?"}]},
            ).json()["choices"][0]["message"]["content"]

        def test_scripted(qstash):
            assert ask(qstash) == "Sunny from the script."
            qstash.assert_llm_called(contains="weather", times=1)

        def test_scripted_again_after_reset(qstash):
            assert ask(qstash) == "Sunny from the script."

        @pytest.mark.qstash(llm_scripts="more.yaml")
        def test_marker_script(qstash):
            assert ask(qstash) == "Sunny from the script."  # the option's rules come first
            assert len(qstash.llm.rules) == 2
        """
    )
    project.path.joinpath("more.yaml").write_text("- contains: rain\n  content: Wet.\n")
    run(project, "--qstash-llm-script=script.yaml").assert_outcomes(passed=3)


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_asyncio_modes_and_loop_scopes(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makeini(INI.format(extra=f"asyncio_mode = {mode}"))
    pytester.makepyfile(
        """
        import pytest

        async def publish_and_check(qstash, client, body):
            hook = qstash.capture()
            await client.message.publish(url=hook.url, body=body, delay="1m")
            await qstash.aadvance("1m")
            await qstash.aassert_delivered(hook, body=body)

        @pytest.mark.asyncio
        async def test_function_loop(qstash, qstash_async_client):
            await publish_and_check(qstash, qstash_async_client, "f")

        @pytest.mark.asyncio(loop_scope="module")
        async def test_module_loop(qstash, qstash_async_client):
            await publish_and_check(qstash, qstash_async_client, "m")

        @pytest.mark.asyncio(loop_scope="session")
        async def test_session_loop(qstash, qstash_async_client):
            await publish_and_check(qstash, qstash_async_client, "s")

        @pytest.mark.asyncio(loop_scope="session")
        async def test_session_loop_again(qstash, qstash_async_client):
            await publish_and_check(qstash, qstash_async_client, "s2")
        """
    )
    run(pytester, "-W", "error::pytest.PytestUnraisableExceptionWarning").assert_outcomes(passed=4)


def test_xdist_workers_have_their_own_emulators(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makeini(INI.format(extra=""))
    out = pytester.mkdir("out")
    pytester.makepyfile(
        f"""
        import os
        import pytest

        @pytest.mark.parametrize("i", range(8))
        def test_publish(qstash, qstash_client, i):
            hook = qstash.capture()
            qstash_client.message.publish(url=hook.url, body=str(i))
            qstash.assert_delivered(hook, body=str(i), times=1)
            worker = os.environ["PYTEST_XDIST_WORKER"]
            with open(os.path.join({str(out)!r}, f"{{worker}}-{{i}}"), "w") as f:
                f.write(qstash.url)
        """
    )
    result = pytester.runpytest_subprocess(*QUIET, "-n", "2", "--qstash-log=run.log")
    result.assert_outcomes(passed=8)
    urls: dict[str, set[str]] = {}
    for path in Path(out).iterdir():
        worker = path.name.split("-")[0]
        urls.setdefault(worker, set()).add(path.read_text())
    assert len(urls) == 2  # both workers ran tests...
    [a], [b] = urls.values()  # ...each on one emulator of its own
    assert a != b
    logs = sorted(p.name for p in pytester.path.glob("run*.log"))
    assert logs == ["run.gw0.log", "run.gw1.log"]  # no shared files either


def test_fresh_fixture_stops_its_server(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import urllib.request
        import pytest

        seen = []

        def test_fresh(qstash_fresh):
            seen.append(qstash_fresh.url)

        def test_it_is_gone():
            with pytest.raises(OSError):
                urllib.request.urlopen(seen[0] + "/__captures", timeout=5)
        """
    )
    run(project).assert_outcomes(passed=2)


def test_many_tests_share_one_server_reset_between_them(project: pytest.Pytester) -> None:
    # Per-test cost is the benchmark's business (benchmarks/plugin_overhead.py); here the
    # behaviour behind it: one server for the session, fresh state for every test.
    project.makepyfile(
        """
        import pytest

        SEEN = []

        @pytest.mark.parametrize("i", range(200))
        def test_many(qstash, i):
            assert qstash.deliveries() == []
            qstash.capture("c").url  # touch the server
            SEEN.append(id(qstash.emulator))

        def test_one_server_for_all():
            assert len(SEEN) == 200 and len(set(SEEN)) == 1
        """
    )
    run(project).assert_outcomes(passed=201)
