"""Ids: base-58 encoding and the deterministic id source."""

from __future__ import annotations

import random

from qstash_emulator.core.ids import IdSource, b58

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _reference_b58(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(_ALPHABET[r])
    return "".join(reversed(out)) or "1"


def test_b58_matches_the_digit_by_digit_encoding() -> None:
    rng = random.Random(7)
    samples = [b"", b"\0", b"\x01", b"\x39", b"\x3a", b"\0\0\x01\x00", b"\xff" * 32]
    samples += [rng.randbytes(rng.randint(1, 40)) for _ in range(500)]
    for data in samples:
        assert b58(data) == _reference_b58(data), data


def test_the_same_seed_gives_the_same_ids_and_another_seed_others() -> None:
    a, b, c = IdSource(1), IdSource(1), IdSource(2)
    ids_a = [a.next("message", "msg_") for _ in range(3)]
    assert ids_a == [b.next("message", "msg_") for _ in range(3)]
    assert ids_a != [c.next("message", "msg_") for _ in range(3)]
    assert len(set(ids_a)) == 3 and all(i.startswith("msg_") for i in ids_a)
