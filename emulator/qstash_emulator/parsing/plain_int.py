"""Integers as QStash reads them: ASCII digits only.

Python's int() also takes full-width and Arabic-Indic digits, which no client means as a number
and QStash (Go) refuses.
"""

from __future__ import annotations

import re

__all__ = ["plain_int"]

_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)


def plain_int(text: str) -> int:
    """`int(text)` for ASCII digits with an optional sign (surrounding spaces allowed).

    Raises:
        ValueError: For anything else (full-width digits included).
    """
    stripped = text.strip()
    if not _INT.fullmatch(stripped) or len(stripped) > 40:
        raise ValueError(f"not an integer: {text!r}")
    return int(stripped)
