"""What a header must be to be sent on: the rules and limits publish and batch share.

A publish's own headers already passed aiohttp's parser; a batch entry's come from JSON and
could hold anything. Both go through `check_header_fields`, so a header that the delivery could
not send (the delivery client refuses it at send time) is a 400 at publish, never a failed
attempt.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..core.errors import bad_request

__all__ = ["MAX_FIELD_SIZE", "MAX_HEADERS", "check_header_fields"]

# aiohttp's server parser refuses a request with more headers than this or a longer field, so
# a publish can never carry more; a batch entry gets the same limits.
MAX_HEADERS = 128
MAX_FIELD_SIZE = 8190

# RFC 9110 token characters for names; values: visible ASCII, space, tab and obs-text (no
# control characters: CR, LF and NUL split or cut the request, and servers refuse the rest).
_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", re.ASCII)
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def check_header_fields(pairs: Iterable[tuple[str, str]]) -> None:
    """Raise a 400 naming the first header that could not be sent as it is."""
    for count, (name, value) in enumerate(pairs, start=1):
        if count > MAX_HEADERS:
            raise bad_request(f"too many headers: at most {MAX_HEADERS}")
        if not _NAME.fullmatch(name):
            raise bad_request(f"invalid header name {name!r}")
        if len(name) > MAX_FIELD_SIZE or len(value) > MAX_FIELD_SIZE:
            raise bad_request(f"header {name!r} is longer than {MAX_FIELD_SIZE} characters")
        if _BAD_VALUE.search(value):
            raise bad_request(f"invalid value for header {name!r}: control characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise bad_request(f"invalid value for header {name!r}: not valid text") from None
