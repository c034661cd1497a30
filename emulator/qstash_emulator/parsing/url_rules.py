"""What a destination URL must be for a delivery to be possible.

Checked at publish, so a URL that could never be sent (port 99999, a space in the host) is a
400, not retries until the DLQ.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import urlsplit

__all__ = ["url_problem"]

# Host names: letters (IDN included), digits, '-', '.', '_'; IPv6 literals (':' and zone '%').
_HOST = re.compile(r"[\w.\-:%~]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@functools.lru_cache(maxsize=1024)  # a publish asks up to three times; URLs repeat
def url_problem(text: str) -> str | None:
    """Why `text` cannot be a destination URL, or None when it can."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "it must start with http:// or https://"
    if _CONTROL.search(text):
        return "it has control characters"
    if " " in parts.netloc:
        return "a space in its host"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid text"
    host = parts.hostname
    if not host or not _HOST.fullmatch(host) or host.startswith(("-", ".")):
        return f"invalid host {host or ''!r}"
    try:
        port = parts.port  # ValueError: out of 0-65535 or not digits (full-width digits too)
    except ValueError as exc:
        return f"invalid port: {exc}"
    if port == 0:
        return "invalid port: 0"
    return None
