"""Import cost of the pytest plugin, beside pytest-httpserver's plugin as the anchor.

pytest imports every installed `pytest11` plugin in every run, so this cost is paid by each
pytest run in an environment where qstash-emulator is installed, QStash fixtures used or not.

Each round starts fresh interpreters (alternating the two plugins, so drift hits both alike)
that first import pytest, as pytest has before it loads plugins, and then the plugin:

* importtime - `python -X importtime`: the cumulative time of everything the plugin import
               loaded that pytest had not (the top-level entries after `pytest`)
* wall       - a separate interpreter without `-X importtime` (which adds its own overhead):
               `time.perf_counter()` around the import statement

The result is the ratio of medians, qstash / httpserver. Aim: importtime ratio <= 1.5.

    .venv/bin/python benchmarks/plugin_import.py [--rounds 20] [--json] [--check]

Needs pytest-httpserver (in the `test` extra).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from typing import Any

PLUGINS = {
    "qstash": "pytest_qstash.plugin",
    "httpserver": "pytest_httpserver.pytest_plugin",  # the anchor
}
AIM = 1.5
WARMUP_ROUNDS = 2
# Top-level packages a lazy plugin must not load (shown when one does).
HEAVY = ("aiohttp", "faker", "croniter", "yaml", "jwt", "qstash", "qstash_emulator", "httpx")

WALL = """
import json, sys, time
import pytest
before = set(sys.modules)
t = time.perf_counter()
import {module}
elapsed = time.perf_counter() - t
new = sorted(set(sys.modules) - before)
print(json.dumps({{"seconds": elapsed, "modules": new}}))
"""


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.splitlines()[-15:])
        raise SystemExit(f"benchmark child failed: {' '.join(args)}\n{tail}")
    return result


def importtime(module: str) -> tuple[float, list[tuple[str, float]]]:
    """Seconds the import of `module` took after pytest's, and its top-level entries."""
    result = _run([sys.executable, "-X", "importtime", "-c", f"import pytest; import {module}"])
    entries: list[tuple[str, float]] = []
    after_pytest = False
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|", 2)
        if not cumulative.strip().isdigit():
            continue  # the header line
        if name.startswith("  "):
            continue  # nested: already inside a top-level entry's cumulative time
        name = name.strip()
        if after_pytest:
            entries.append((name, int(cumulative) / 1e6))
        elif name == "pytest":
            after_pytest = True
    if not after_pytest:
        raise SystemExit(f"no `pytest` entry in -X importtime output for {module}")
    return sum(seconds for _, seconds in entries), entries


def wall(module: str) -> tuple[float, list[str]]:
    result = _run([sys.executable, "-c", WALL.format(module=module)])
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return float(found["seconds"]), list(found["modules"])


def measure(rounds: int) -> dict[str, Any]:
    samples: dict[str, dict[str, list[float]]] = {
        name: {"importtime": [], "wall": []} for name in PLUGINS
    }
    modules: dict[str, list[str]] = {}
    top: dict[str, list[tuple[str, float]]] = {}
    for i in range(WARMUP_ROUNDS + rounds):
        for name, module in PLUGINS.items():
            seconds, entries = importtime(module)
            wall_seconds, new = wall(module)
            if i < WARMUP_ROUNDS:
                continue
            samples[name]["importtime"].append(seconds)
            samples[name]["wall"].append(wall_seconds)
            modules[name] = new
            top[name] = sorted(entries, key=lambda e: -e[1])[:3]
    result: dict[str, Any] = {"rounds": rounds, "plugins": {}}
    for name, module in PLUGINS.items():
        new = modules[name]
        result["plugins"][name] = {
            "module": module,
            "importtime_ms": statistics.median(samples[name]["importtime"]) * 1000,
            "wall_ms": statistics.median(samples[name]["wall"]) * 1000,
            "new_modules": len(new),
            "heavy_loaded": sorted({m.partition(".")[0] for m in new} & set(HEAVY)),
            "top_level": [[entry, seconds * 1000] for entry, seconds in top[name]],
        }
    ours, anchor = result["plugins"]["qstash"], result["plugins"]["httpserver"]
    result["ratio_importtime"] = ours["importtime_ms"] / anchor["importtime_ms"]
    result["ratio_wall"] = ours["wall_ms"] / anchor["wall_ms"]
    result["aim"] = AIM
    result["met"] = result["ratio_importtime"] <= AIM
    return result


def table(result: dict[str, Any]) -> str:
    lines = [
        f"plugin import cost after `import pytest`, fresh interpreters, "
        f"median of {result['rounds']} rounds",
        "",
        f"{'plugin':<46}{'importtime ms':>15}{'wall ms':>10}{'new modules':>13}",
    ]
    for name, row in result["plugins"].items():
        label = f"{name} ({row['module']})"
        lines.append(
            f"{label:<46}{row['importtime_ms']:>15.1f}{row['wall_ms']:>10.1f}"
            f"{row['new_modules']:>13}"
        )
    lines.append("")
    verdict = "MET" if result["met"] else "MISSED"
    lines.append(
        f"qstash/httpserver = {result['ratio_importtime']:.2f} (importtime; aim <= {AIM}): "
        f"{verdict};  wall {result['ratio_wall']:.2f}"
    )
    for name, row in result["plugins"].items():
        heaviest = ", ".join(f"{entry} {ms:.1f} ms" for entry, ms in row["top_level"])
        lines.append(f"{name}: heaviest top-level imports (last round): {heaviest}")
        if row["heavy_loaded"]:
            lines.append(f"{name}: loads {', '.join(row['heavy_loaded'])} at import")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="measured rounds (default 20)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if the ratio is > {AIM}")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    result = measure(args.rounds)
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 1 if args.check and not result["met"] else 0


if __name__ == "__main__":
    sys.exit(main())
