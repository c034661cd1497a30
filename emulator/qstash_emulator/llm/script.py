"""Loading rules from YAML or JSON script files.

A script is a list of rules, or a mapping with a `rules` list (and an optional
`description`). Each rule uses the keyword names of `LLMEngine.reply`, e.g.:

    rules:
      - contains: weather
        content: Sunny, 24 degrees.
      - model: mistralai/Mistral-7B-Instruct-v0.2
        error: {status: 429, headers: {x-ratelimit-reset-requests: 10s}}
        times: 1
      - regex: "(?i)plan"
        sequence: [First, {json: {"step": 2}}, {error: 503}]
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .rules import Rule, make_rule

__all__ = ["ScriptError", "read_script", "rules_from_data"]

_RULE_KEYS = frozenset(inspect.signature(make_rule).parameters)


class ScriptError(ValueError):
    """A script file that cannot be read or holds an invalid rule."""


def read_script(path: str | os.PathLike[str]) -> Any:
    """The decoded file: JSON for `.json`, YAML otherwise."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
        if file.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ScriptError(f"{file}: {exc}") from exc


def rules_from_data(data: Any, source: str = "<script>") -> list[Rule]:
    """Build the rules of a decoded script (see the module docstring for the format)."""
    if isinstance(data, Mapping):
        extra = set(data) - {"rules", "description"}
        if extra:
            raise ScriptError(f"{source}: unknown top-level keys {sorted(extra)}")
        data = data.get("rules", [])
    if not isinstance(data, list):
        raise ScriptError(f"{source}: a script is a list of rules or a mapping with 'rules'")
    rules = []
    for index, spec in enumerate(data):
        where = f"{source}: rule {index}"
        if not isinstance(spec, Mapping):
            raise ScriptError(f"{where}: a rule must be a mapping, got {spec!r}")
        unknown = set(spec) - _RULE_KEYS
        if unknown:
            raise ScriptError(f"{where}: unknown keys {sorted(unknown)}")
        try:
            rules.append(make_rule(**{str(k): v for k, v in spec.items()}))
        except (TypeError, ValueError) as exc:
            raise ScriptError(f"{where}: {exc}") from exc
    return rules
