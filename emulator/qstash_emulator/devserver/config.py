"""Seeded state: a TOML or YAML file declaring what the dev server starts with.

Users, queues, URL groups, schedules, destination rewrites, LLM scripts, rate limits and the
plan quota, applied when the server starts.

Applying is idempotent: the same file applied again (on start, after a reset, or twice in a row
through the same `Seeder`) leaves the same state — queues and groups are upserted, schedules keep
their ids (given, or derived from their content), rewrites and users are not added twice, and the
LLM rules a script loaded are replaced rather than appended. The whole file is checked before
anything is applied; an error names the entry (`schedules[1].cron: ...`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import yaml

from ..controls.limits import LimitConfig
from ..core.errors import ApiError
from ..core.ids import b58, digest
from ..core.quotas import QUOTAS
from ..core.users import User
from ..llm.rules import Rule
from ..llm.script import read_script, rules_from_data
from ..parsing.cron import CronError, CronSpec
from ..parsing.publish_headers import is_url, parse_message_headers
from ..resources.queues import check_name
from ..resources.url_groups import Endpoint

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

if TYPE_CHECKING:
    from ..emulator import Emulator

__all__ = [
    "Config",
    "ConfigError",
    "GroupDecl",
    "QueueDecl",
    "ScheduleDecl",
    "Seeder",
    "UserDecl",
    "apply_config",
    "load_config",
    "parse_config",
]

TOP_KEYS = {
    "quota",
    "users",
    "limits",
    "rewrites",
    "queues",
    "url_groups",
    "schedules",
    "llm_scripts",
}
LIMIT_KEYS = set(LimitConfig.__dataclass_fields__)


class ConfigError(ValueError):
    """The config file is unreadable or declares something invalid (nothing was applied)."""


# -- the parsed file ---------------------------------------------------------------------------
@dataclass
class UserDecl:
    """A user to add (or an existing one to check)."""

    name: str
    token: str | None = None
    current_signing_key: str | None = None
    next_signing_key: str | None = None
    quota: str | None = None


@dataclass
class QueueDecl:
    """A queue to upsert."""

    name: str
    user: str | None = None
    parallelism: int = 1
    paused: bool = False


@dataclass
class GroupDecl:
    """A URL group and its endpoints."""

    name: str
    endpoints: list[Endpoint]
    user: str | None = None


@dataclass
class ScheduleDecl:
    """A schedule, with the publish headers of its firings."""

    id: str
    cron: str
    destination: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    paused: bool = False


@dataclass
class Config:
    """A checked config file, ready to apply."""

    source: str = "<config>"
    quota: str | None = None
    users: list[UserDecl] = field(default_factory=list)
    limits: dict[str, int | None] = field(default_factory=dict)
    user_limits: dict[str, dict[str, int | None]] = field(default_factory=dict)
    rewrites: list[tuple[str, str]] = field(default_factory=list)
    queues: list[QueueDecl] = field(default_factory=list)
    url_groups: list[GroupDecl] = field(default_factory=list)
    schedules: list[ScheduleDecl] = field(default_factory=list)
    llm_scripts: list[tuple[str, Any]] = field(default_factory=list)  # (path, decoded script)


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and check a config file: `.toml`, `.yaml`/`.yml` or `.json`."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the config file: {exc.strerror}") from None
    suffix = file.suffix.lower()
    try:
        if suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"{file}: a config file is .toml, .yaml, .yml or .json")
    except (tomllib.TOMLDecodeError, yaml.YAMLError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{file}: not valid {suffix[1:].upper()}: {exc}") from None
    return parse_config(data or {}, source=str(file), base=file.parent)


def parse_config(data: Any, *, source: str = "<config>", base: Path | None = None) -> Config:
    """Check decoded config data (a mapping) and return what to apply."""
    where = _Where(source)
    mapping = where.mapping(data, "")
    where.known(mapping, TOP_KEYS, "")
    config = Config(source=source)
    if "quota" in mapping:
        config.quota = where.quota(mapping["quota"], "quota")
    for i, item in enumerate(where.items(mapping, "users")):
        at = f"users[{i}]"
        entry = where.mapping(item, at)
        where.known(entry, {f.name for f in dataclasses.fields(UserDecl)}, at)
        decl = UserDecl(name=where.string(entry.get("name"), at + ".name"))
        for key in ("token", "current_signing_key", "next_signing_key"):
            if key in entry:
                setattr(decl, key, where.string(entry[key], f"{at}.{key}"))
        if "quota" in entry:
            decl.quota = where.quota(entry["quota"], at + ".quota")
        config.users.append(decl)
    if "limits" in mapping:
        limits = where.mapping(mapping["limits"], "limits")
        where.known(limits, LIMIT_KEYS | {"users"}, "limits")
        config.limits = where.limit_values(limits, "limits")
        users = where.mapping(limits.get("users", {}), "limits.users")
        for name, values in users.items():
            at = f"limits.users.{name}"
            per_user = where.mapping(values, at)
            where.known(per_user, LIMIT_KEYS, at)
            config.user_limits[str(name)] = where.limit_values(per_user, at)
    if "rewrites" in mapping:
        rewrites = mapping["rewrites"]
        pairs: list[tuple[Any, Any]]
        if isinstance(rewrites, Mapping):
            pairs = list(rewrites.items())
        else:
            pairs = []
            for i, item in enumerate(where.items(mapping, "rewrites")):
                entry = where.mapping(item, f"rewrites[{i}]")
                where.known(entry, {"from", "to"}, f"rewrites[{i}]")
                pairs.append((entry.get("from"), entry.get("to")))
        for published, local in pairs:
            at = f"rewrites[{published!r}]"
            config.rewrites.append((where.url(published, at), where.url(local, at)))
    for i, item in enumerate(where.items(mapping, "queues")):
        at = f"queues[{i}]"
        entry = where.mapping(item, at)
        where.known(entry, {"name", "user", "parallelism", "paused"}, at)
        name = where.name(entry.get("name"), at + ".name", "queue")
        parallelism = entry.get("parallelism", 1)
        if isinstance(parallelism, bool) or not isinstance(parallelism, int) or parallelism < 1:
            where.fail(at + ".parallelism", f"an integer >= 1, got {parallelism!r}")
        config.queues.append(
            QueueDecl(
                name,
                where.optional_string(entry.get("user"), at + ".user"),
                parallelism,
                where.boolean(entry.get("paused", False), at + ".paused"),
            )
        )
    for i, item in enumerate(where.items(mapping, "url_groups")):
        at = f"url_groups[{i}]"
        entry = where.mapping(item, at)
        where.known(entry, {"name", "user", "endpoints"}, at)
        name = where.name(entry.get("name"), at + ".name", "url group")
        raw = entry.get("endpoints")
        if not isinstance(raw, list) or not raw:
            where.fail(at + ".endpoints", "a non-empty list of URLs or {url, name} tables")
        endpoints = []
        for j, ep in enumerate(raw):
            ep_at = f"{at}.endpoints[{j}]"
            if isinstance(ep, str):
                endpoints.append(Endpoint(where.url(ep, ep_at)))
                continue
            ep_map = where.mapping(ep, ep_at)
            where.known(ep_map, {"url", "name"}, ep_at)
            endpoints.append(
                Endpoint(
                    where.url(ep_map.get("url"), ep_at + ".url"),
                    where.optional_string(ep_map.get("name"), ep_at + ".name"),
                )
            )
        config.url_groups.append(
            GroupDecl(name, endpoints, where.optional_string(entry.get("user"), at + ".user"))
        )
    for i, item in enumerate(where.items(mapping, "schedules")):
        config.schedules.append(_schedule(where, item, f"schedules[{i}]"))
    for i, item in enumerate(where.items(mapping, "llm_scripts")):
        at = f"llm_scripts[{i}]"
        script = Path(where.string(item, at))
        if not script.is_absolute() and base is not None:
            script = base / script
        try:
            decoded = read_script(script)
            rules_from_data(decoded, str(script))  # checked now, loaded on apply
        except (OSError, ValueError) as exc:
            where.fail(at, str(exc))
        config.llm_scripts.append((str(script), decoded))
    return config


SCHEDULE_KEYS = {"id", "cron", "destination", "body", "headers", "user", "paused", "queue"}


def _schedule(where: _Where, item: Any, at: str) -> ScheduleDecl:
    entry = where.mapping(item, at)
    where.known(entry, SCHEDULE_KEYS, at)
    cron = where.string(entry.get("cron"), at + ".cron")
    try:
        CronSpec.parse(cron)
    except CronError as exc:
        where.fail(at + ".cron", str(exc))
    destination = where.string(entry.get("destination"), at + ".destination")
    body = entry.get("body", "")
    if isinstance(body, (dict, list)):
        body = json.dumps(body, separators=(",", ":"))
    if not isinstance(body, str):
        where.fail(at + ".body", "a string, or a table/list sent as JSON")
    headers_raw = where.mapping(entry.get("headers", {}), at + ".headers")
    headers = {str(k): str(v) for k, v in headers_raw.items()}
    if "queue" in entry:
        headers["Upstash-Queue-Name"] = where.string(entry["queue"], at + ".queue")
    user = where.optional_string(entry.get("user"), at + ".user")
    schedule_id = entry.get("id")
    if schedule_id is None:
        # Derived from the content, so the same entry keeps its id on every apply.
        schedule_id = "scd_" + b58(digest("config", user, destination, cron, body))[:24]
    return ScheduleDecl(
        id=where.string(schedule_id, at + ".id"),
        cron=cron,
        destination=destination,
        body=body.encode(),
        headers=headers,
        user=user,
        paused=where.boolean(entry.get("paused", False), at + ".paused"),
    )


class _Where:
    """Checks with the entry's location in every message."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, at: str, what: str) -> NoReturn:
        raise ConfigError(f"{self.source}: {at or 'top level'}: {what}")

    def mapping(self, value: Any, at: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            self.fail(at, f"expected a table/mapping, got {type(value).__name__}")
        return value

    def items(self, mapping: Mapping[str, Any], key: str) -> list[Any]:
        value = mapping.get(key, [])
        if not isinstance(value, list):
            self.fail(key, f"expected a list, got {type(value).__name__}")
        return value

    def known(self, mapping: Mapping[str, Any], allowed: set[str], at: str) -> None:
        unknown = sorted(set(map(str, mapping)) - allowed)
        if unknown:
            self.fail(at, f"unknown keys {unknown} (known: {sorted(allowed)})")

    def string(self, value: Any, at: str) -> str:
        if not isinstance(value, str) or not value:
            self.fail(at, f"a non-empty string is required, got {value!r}")
        return value

    def optional_string(self, value: Any, at: str) -> str | None:
        return None if value is None else self.string(value, at)

    def boolean(self, value: Any, at: str) -> bool:
        if not isinstance(value, bool):
            self.fail(at, f"true or false, got {value!r}")
        return value

    def url(self, value: Any, at: str) -> str:
        if not isinstance(value, str) or not is_url(value):
            self.fail(at, f"an http:// or https:// URL, got {value!r}")
        return value

    def quota(self, value: Any, at: str) -> str:
        if value not in QUOTAS:
            self.fail(at, f"one of {sorted(QUOTAS)}, got {value!r}")
        return str(value)

    def name(self, value: Any, at: str, what: str) -> str:
        try:
            return check_name(self.string(value, at), what)
        except ApiError as exc:
            return self.fail(at, exc.message)

    def limit_values(self, mapping: Mapping[str, Any], at: str) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        for key in LIMIT_KEYS & set(mapping):
            value = mapping[key]
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                self.fail(f"{at}.{key}", f"an integer >= 0, got {value!r}")
            out[key] = value
        return out


# -- applying it ---------------------------------------------------------------------------------
class Seeder:
    """Applies a config to an emulator, as often as asked, with the same result each time."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self._llm_rules: dict[str, list[Rule]] = {}  # script path -> rules it loaded

    def apply(self, config: Config) -> None:
        """Apply on the emulator's loop (or before it starts)."""
        emu = self.emulator
        try:
            self._apply(emu, config)
        except ApiError as exc:
            raise ConfigError(f"{config.source}: {exc.message}") from None

    def _apply(self, emu: Emulator, config: Config) -> None:
        users = emu.users
        if config.quota is not None:
            emu.set_quota(config.quota)
        for decl in config.users:
            self._user(emu, decl, config.source)
        known = {user.name for user in users}
        for who in config.user_limits:
            if who not in known:
                raise ConfigError(f"{config.source}: limits.users.{who}: no such user")
        if config.limits:
            emu.limits.configure(None, **config.limits)
        for who, values in config.user_limits.items():
            emu.limits.configure(who, **values)
        for published, local in config.rewrites:
            rule = (published.rstrip("/"), local.rstrip("/"))
            if rule not in emu.delivery.rewrites:
                emu.delivery.rewrite(published, local)
        for q in config.queues:
            owner = self._owner(emu, q.user, config.source)
            queue = emu.queues.find(owner, q.name)
            if queue is None or (queue.parallelism, queue.paused) != (q.parallelism, q.paused):
                emu.queues.upsert(owner, q.name, q.parallelism, q.paused)
        for g in config.url_groups:
            owner = self._owner(emu, g.user, config.source)
            group = emu.url_groups.find(owner, g.name)
            if group is None or group.endpoints != g.endpoints:
                emu.url_groups.upsert(owner, g.name, g.endpoints)
        for s in config.schedules:
            self._schedule(emu, s, config.source)
        for path, decoded in config.llm_scripts:
            emu.llm.remove_rules(self._llm_rules.get(path, []))
            self._llm_rules[path] = emu.llm.load_rules(decoded, path)

    def _user(self, emu: Emulator, decl: UserDecl, source: str) -> None:
        users = emu.users
        existing = next((u for u in users if u.name == decl.name), None)
        if existing is None:
            users.add(
                decl.name,
                token=decl.token,
                current=decl.current_signing_key,
                next=decl.next_signing_key,
                quota=decl.quota,
            )
            return
        for key, theirs in (
            ("token", existing.token),
            ("current_signing_key", existing.current_signing_key),
            ("next_signing_key", existing.next_signing_key),
        ):
            ours = getattr(decl, key)
            if ours is not None and ours != theirs:
                raise ConfigError(
                    f"{source}: users: {decl.name} exists with another {key.replace('_', ' ')}"
                )
        if decl.quota is not None:
            existing.quota = QUOTAS[decl.quota]

    @staticmethod
    def _owner(emu: Emulator, name: str | None, source: str) -> User:
        if name is None:
            return emu.user
        found = next((u for u in emu.users if u.name == name), None)
        if found is None:
            raise ConfigError(f"{source}: no such user {name!r} (declare it under users)")
        return found

    def _schedule(self, emu: Emulator, s: ScheduleDecl, source: str) -> None:
        owner = self._owner(emu, s.user, source)
        headers = {**s.headers, "Upstash-Cron": s.cron, "Upstash-Schedule-Id": s.id}
        spec = parse_message_headers(headers.items(), owner.quota)
        existing = next((x for x in emu.schedules.list(owner) if x.id == s.id), None)
        same = (
            existing is not None
            and existing.destination == s.destination
            and existing.body == s.body
            and existing.cron.expr == s.cron
            and existing.spec == dataclasses.replace(spec, schedule_id=None)
        )
        if not same:  # replacing keeps createdAt; an unchanged entry keeps its last firing too
            emu.schedules.create(owner, s.destination, spec, s.body, caller_ip="127.0.0.1")
        # The file declares the paused state (a replace would keep the old one).
        if s.paused:
            emu.schedules.pause(owner, s.id)
        else:
            emu.schedules.resume(owner, s.id)


def apply_config(emulator: Emulator, config: Config | str | os.PathLike[str]) -> Seeder:
    """Load (if a path) and apply a config; keep the returned `Seeder` to apply it again."""
    seeder = Seeder(emulator)
    seeder.apply(config if isinstance(config, Config) else load_config(config))
    return seeder
