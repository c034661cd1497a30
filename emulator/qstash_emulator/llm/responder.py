"""Default answers when no rule matches: deterministic Faker text, JSON objects and schema values.

Faker is seeded per answer from a SHA-256 of the inputs (see `.hashing`), so the same
request gives the same text in every process. One Faker instance is shared (building one costs
tens of milliseconds); a lock keeps "seed, then draw" atomic across threads.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

from faker import Faker

from .hashing import int_seed

__all__ = ["default_json_object", "default_text", "default_transcript", "schema_value"]

_faker: Faker | None = None
_lock = threading.Lock()

# Property names for which a Faker provider gives a more plausible value than a lorem word.
_NAMED_STRINGS = {
    "name": "name",
    "first_name": "first_name",
    "last_name": "last_name",
    "email": "email",
    "city": "city",
    "location": "city",
    "country": "country",
    "address": "address",
    "company": "company",
    "job": "job",
    "title": "sentence",
    "description": "sentence",
    "summary": "sentence",
    "url": "url",
    "phone": "phone_number",
    "color": "color_name",
}
_FORMATS = {
    "date-time": "iso8601",
    "date": "date",
    "time": "time",
    "email": "email",
    "uri": "url",
    "uuid": "uuid4",
}
_MAX_DEPTH = 6


def _shared_faker() -> Faker:
    global _faker
    if _faker is None:
        _faker = Faker("en_US")
    return _faker


class _Seeded:
    """`with _Seeded(*key) as fake:` gives the shared Faker, seeded from the key."""

    def __init__(self, *key: Any) -> None:
        self._seed = int_seed(*key)

    def __enter__(self) -> Faker:
        _lock.acquire()
        fake = _shared_faker()
        fake.seed_instance(self._seed)
        return fake

    def __exit__(self, *exc: object) -> None:
        _lock.release()


def default_text(*key: Any) -> str:
    """An assistant-like paragraph of one to four sentences."""
    with _Seeded("text", *key) as fake:
        count = fake.random_int(1, 4)
        return " ".join(fake.sentence(nb_words=fake.random_int(5, 14)) for _ in range(count))


def default_json_object(*key: Any) -> str:
    """JSON mode without a schema: a small object; always valid JSON."""
    with _Seeded("json", *key) as fake:
        value = {
            "answer": fake.sentence(nb_words=fake.random_int(4, 10)),
            "confidence": round(fake.random_int(50, 99) / 100, 2),
            "topics": fake.words(nb=fake.random_int(1, 3)),
        }
    return json.dumps(value)


def schema_value(schema: Mapping[str, Any], *key: Any) -> Any:
    """A value conforming to (the common subset of) a JSON schema, deterministic from the key."""
    with _Seeded("schema", *key) as fake:
        return _fill(fake, schema, schema, None, 0)


def default_transcript(*key: Any) -> str:
    """A deterministic made-up transcript for the key (three sentences)."""
    with _Seeded("transcript", *key) as fake:
        return " ".join(fake.sentence(nb_words=fake.random_int(6, 12)) for _ in range(3))


def _resolve(root: Mapping[str, Any], schema: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    node: Any = root
    for part in ref[2:].split("/"):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else {}


def _fill(
    fake: Faker, root: Mapping[str, Any], schema: Mapping[str, Any], name: str | None, depth: int
) -> Any:
    schema = _resolve(root, schema)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return fake.random_element(schema["enum"])
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combinator)
        if isinstance(options, list) and options and isinstance(options[0], Mapping):
            return _fill(fake, root, options[0], name, depth)
    kind = schema.get("type")
    if isinstance(kind, list):  # e.g. ["string", "null"]: take the first non-null type
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    if kind == "object":
        if depth >= _MAX_DEPTH:
            return {}
        properties = schema.get("properties")
        if not isinstance(properties, Mapping):
            return {}
        return {
            prop: _fill(fake, root, sub if isinstance(sub, Mapping) else {}, prop, depth + 1)
            for prop, sub in properties.items()
        }
    if kind == "array":
        items = schema.get("items")
        if depth >= _MAX_DEPTH or not isinstance(items, Mapping):
            return []
        low = int(schema.get("minItems", 1))
        high = max(low, min(int(schema.get("maxItems", 3)), low + 3))
        return [
            _fill(fake, root, items, name, depth + 1) for _ in range(fake.random_int(low, high))
        ]
    if kind == "integer":
        return fake.random_int(int(schema.get("minimum", 0)), int(schema.get("maximum", 100)))
    if kind == "number":
        bottom = float(schema.get("minimum", 0))
        top = float(schema.get("maximum", 100))
        return round(bottom + (top - bottom) * fake.random_int(0, 1000) / 1000, 2)
    if kind == "boolean":
        return fake.boolean()
    if kind == "null":
        return None
    return _string(fake, schema, name)


def _string(fake: Faker, schema: Mapping[str, Any], name: str | None) -> str:
    fmt = schema.get("format")
    provider = _FORMATS.get(fmt) if isinstance(fmt, str) else None
    if provider is None and name is not None:
        provider = _NAMED_STRINGS.get(name.lower())
    value = str(getattr(fake, provider)()) if provider else " ".join(fake.words(nb=2))
    max_length = schema.get("maxLength")
    if isinstance(max_length, int):
        value = value[:max_length]
    return value
