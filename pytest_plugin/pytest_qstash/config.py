"""Settings from the command line, the ini file and `@pytest.mark.qstash(...)`.

Precedence: marker (closest wins) > command line > ini > defaults. Settings that shape the
server itself (extra users, real time) give a test its own server when they differ from the
session's; the rest apply to the shared server after its per-test reset.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from .constants import DEFAULT_QUOTA, QUOTA_TIERS

__all__ = [
    "RateLimits",
    "Settings",
    "UserSpec",
    "add_options",
    "for_test",
    "from_config",
    "marker_kwargs",
]

_MARKER_KEYS = frozenset(
    {
        "seed",
        "quota",
        "users",
        "llm_scripts",
        "rate_limits",
        "real_time",
        "log",
        "auto_advance",
        "fresh",
    }
)
# Short names a marker may use too.
_ALIASES = {"llm_script": "llm_scripts", "user": "users", "rate_limit": "rate_limits"}
_TRUE = {"1", "true", "yes", "on"}

RateLimits = dict[str | None, dict[str, int | None]]  # user (None: every user) -> limits


@dataclass(frozen=True)
class UserSpec:
    """An extra user for the emulator: its name, and optionally its quota tier and token."""

    name: str
    quota: str | None = None
    token: str | None = None


@dataclass(frozen=True)
class Settings:
    """What a test's emulator is built and reset from: command line, ini options and markers."""

    seed: int = 0
    quota: str = DEFAULT_QUOTA
    users: tuple[UserSpec, ...] = ()
    llm_scripts: tuple[str, ...] = ()
    rate_limits: RateLimits = field(default_factory=dict)
    real_time: bool = False
    log: bool = False
    log_file: str | None = None
    auto_advance: bool = False
    fresh: bool = False

    def own_server(self, shared: Settings) -> bool:
        """Whether this test needs a server of its own rather than the shared one."""
        return self.fresh or self.users != shared.users or self.real_time != shared.real_time


def _usage(message: str) -> pytest.UsageError:
    return pytest.UsageError(f"qstash: {message}")


def _parse_quota(value: Any) -> str:
    name = str(value)
    if name not in QUOTA_TIERS:
        raise _usage(f"unknown quota tier {name!r} (known: {', '.join(QUOTA_TIERS)})")
    return name


def _parse_user(value: Any) -> UserSpec:
    """A user given as "name", "name:quota", or a mapping with name/quota/token."""
    if isinstance(value, UserSpec):
        return value
    if isinstance(value, Mapping):
        unknown = set(value) - {"name", "quota", "token"}
        if unknown or "name" not in value:
            raise _usage(f"a user is a name or {{name, quota, token}}, not {dict(value)!r}")
        quota = value.get("quota")
        return UserSpec(
            str(value["name"]), _parse_quota(quota) if quota else None, value.get("token")
        )
    name, _, quota = str(value).partition(":")
    if not name:
        raise _usage(f"bad user {value!r}: expected NAME or NAME:QUOTA")
    return UserSpec(name, _parse_quota(quota) if quota else None)


def _limit_value(text: str) -> int | None:
    if text.strip().lower() in ("", "none", "off"):
        return None
    try:
        return int(text)
    except ValueError:
        raise _usage(f"a rate limit is an integer or 'none', not {text!r}") from None


def _parse_rate_limits(value: Any) -> RateLimits:
    """{"burst": 5}, {"alice": {"burst": 5}} or ["burst=5", "alice:daily_messages=10"]."""
    out: RateLimits = {}
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(item, Mapping):
                out.setdefault(str(key), {}).update(
                    {str(k): (None if v is None else int(v)) for k, v in item.items()}
                )
            else:
                out.setdefault(None, {})[str(key)] = None if item is None else int(item)
        return out
    items = [value] if isinstance(value, str) else list(value)
    for item in items:
        spec, eq, number = str(item).partition("=")
        if not eq:
            raise _usage(f"bad rate limit {item!r}: expected [USER:]NAME=N")
        user, colon, name = spec.partition(":")
        who = user if colon else None
        out.setdefault(who, {})[name if colon else user] = _limit_value(number)
    return out


def _paths(value: Any) -> tuple[str, ...]:
    if isinstance(value, (str, os.PathLike)):
        return (os.fspath(value),)
    return tuple(os.fspath(v) for v in value)


def _users(value: Any) -> tuple[UserSpec, ...]:
    if isinstance(value, (str, Mapping, UserSpec)):
        return (_parse_user(value),)
    return tuple(_parse_user(v) for v in value)


def _bool(value: Any) -> bool:
    return value.strip().lower() in _TRUE if isinstance(value, str) else bool(value)


def _worker_file(path: str) -> str:
    """Under pytest-xdist every worker writes its own log file (no shared files)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return path
    root, ext = os.path.splitext(path)
    return f"{root}.{worker}{ext}"


def from_config(config: pytest.Config) -> Settings:
    """Session settings: command line first, then the ini file."""

    def pick(option: str, ini: str) -> Any:
        value = config.getoption(option)
        if value is None or value == []:
            value = config.getini(ini)
        return value

    seed = pick("qstash_seed", "qstash_seed")
    log = pick("qstash_log", "qstash_log")
    log_on = bool(log) and str(log).strip().lower() not in ("0", "false", "no", "off")
    log_file = None
    if log_on and str(log).strip().lower() not in _TRUE and log != "-":
        log_file = _worker_file(str(log))
    try:
        seed_value = int(seed) if seed not in (None, "") else 0
    except ValueError:
        raise _usage(f"--qstash-seed must be an integer, not {seed!r}") from None
    return Settings(
        seed=seed_value,
        quota=_parse_quota(pick("qstash_quota", "qstash_quota") or DEFAULT_QUOTA),
        users=_users(pick("qstash_users", "qstash_users") or ()),
        llm_scripts=_paths(pick("qstash_llm_scripts", "qstash_llm_scripts") or ()),
        rate_limits=_parse_rate_limits(pick("qstash_rate_limits", "qstash_rate_limits") or ()),
        real_time=bool(config.getoption("qstash_real_time"))
        or _bool(config.getini("qstash_real_time")),
        log=log_on,
        log_file=log_file,
        auto_advance=bool(config.getoption("qstash_auto_advance"))
        or _bool(config.getini("qstash_auto_advance")),
    )


def _beside(path: str, here: str | None) -> str:
    if here is None or os.path.isabs(path) or os.path.exists(path):
        return path
    return os.path.join(here, path)


def marker_kwargs(markers: Iterable[pytest.Mark]) -> dict[str, Any]:
    """Merged keyword arguments of the test's qstash markers, the closest one winning."""
    merged: dict[str, Any] = {}
    for mark in reversed(list(markers)):  # iter_markers yields the closest first
        if mark.args:
            raise _usage("@pytest.mark.qstash takes keyword arguments only")
        for key, value in mark.kwargs.items():
            name = _ALIASES.get(key, key)
            if name not in _MARKER_KEYS:
                known = ", ".join(sorted(_MARKER_KEYS))
                raise _usage(f"unknown @pytest.mark.qstash option {key!r} (known: {known})")
            merged[name] = value
    return merged


def for_test(base: Settings, kwargs: Mapping[str, Any], here: str | None = None) -> Settings:
    """The session settings with a marker's options on top.

    Relative script paths are looked up from the working directory, then from `here`, the
    test file's directory.
    """
    if not kwargs:
        return base
    changes: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key == "seed":
            changes["seed"] = int(value)
        elif key == "quota":
            changes["quota"] = _parse_quota(value)
        elif key == "users":
            changes["users"] = base.users + _users(value)
        elif key == "llm_scripts":
            found = tuple(_beside(path, here) for path in _paths(value))
            changes["llm_scripts"] = base.llm_scripts + found
        elif key == "rate_limits":
            merged = {k: dict(v) for k, v in base.rate_limits.items()}
            for who, limits in _parse_rate_limits(value).items():
                merged.setdefault(who, {}).update(limits)
            changes["rate_limits"] = merged
        else:  # real_time, log, auto_advance, fresh
            changes[key] = _bool(value)
    return replace(base, **changes)


def add_options(parser: pytest.Parser) -> None:
    """Register the plugin's command-line and ini options."""
    group = parser.getgroup("qstash", "QStash emulator (pytest-qstash)")
    group.addoption(
        "--qstash-seed",
        dest="qstash_seed",
        default=None,
        metavar="N",
        help="seed for ids and default LLM text (default 0)",
    )
    group.addoption(
        "--qstash-quota",
        dest="qstash_quota",
        default=None,
        metavar="TIER",
        help=f"quota tier of the users: {', '.join(QUOTA_TIERS)} (default {DEFAULT_QUOTA})",
    )
    group.addoption(
        "--qstash-user",
        dest="qstash_users",
        action="append",
        default=[],
        metavar="NAME[:QUOTA]",
        help="an extra user (repeatable)",
    )
    group.addoption(
        "--qstash-llm-script",
        dest="qstash_llm_scripts",
        action="append",
        default=[],
        metavar="PATH",
        help="an LLM script file to load (repeatable)",
    )
    group.addoption(
        "--qstash-rate-limit",
        dest="qstash_rate_limits",
        action="append",
        default=[],
        metavar="[USER:]NAME=N",
        help="a rate limit, e.g. burst=5 or alice:daily_messages=100 (repeatable)",
    )
    group.addoption(
        "--qstash-real-time",
        dest="qstash_real_time",
        action="store_true",
        default=False,
        help="run the emulator on the wall clock, not virtual time",
    )
    group.addoption(
        "--qstash-auto-advance",
        dest="qstash_auto_advance",
        action="store_true",
        default=False,
        help="skip idle virtual time while a test waits for a delivery",
    )
    group.addoption(
        "--qstash-log",
        dest="qstash_log",
        nargs="?",
        const="-",
        default=None,
        metavar="PATH",
        help="log every API request and delivery: shown with failing tests, and "
        "appended to PATH if given (one file per xdist worker)",
    )
    parser.addini("qstash_seed", "seed for ids and default LLM text", default="")
    parser.addini("qstash_quota", f"quota tier ({' or '.join(QUOTA_TIERS)})", default="")
    parser.addini("qstash_users", "extra users, NAME[:QUOTA] each", type="args", default=[])
    parser.addini("qstash_llm_scripts", "LLM script files to load", type="paths", default=[])
    parser.addini(
        "qstash_rate_limits", "rate limits, [USER:]NAME=N each", type="linelist", default=[]
    )
    parser.addini("qstash_real_time", "run on the wall clock", type="bool", default=False)
    parser.addini(
        "qstash_auto_advance",
        "skip idle virtual time while a test waits",
        type="bool",
        default=False,
    )
    parser.addini("qstash_log", "log requests and deliveries: true or a file path", default="")
