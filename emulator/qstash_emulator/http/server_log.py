"""What the server prints about requests aiohttp's own parser refuses: one line each.

Not a traceback: a stray client or a scanner on the port must not flood the dev server's output.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError

__all__ = ["SERVER_LOG", "OneLineParserErrors"]

# Handed to aiohttp's request handler as its logger (AppRunner(..., logger=SERVER_LOG)).
SERVER_LOG = logging.getLogger("qstash_emulator.server")


class OneLineParserErrors(logging.Filter):
    """Turns aiohttp's "Error handling request" traceback for a parser refusal into one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite a parser refusal's record in place; every record is kept."""
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            first = str(exc.message).strip().splitlines()[0] if exc.message else ""
            said = record.getMessage()
            record.msg = "%s; refused with %s: %s"
            record.args = (said, exc.code, first.rstrip(":") or type(exc).__name__)
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


if not any(isinstance(f, OneLineParserErrors) for f in SERVER_LOG.filters):
    SERVER_LOG.addFilter(OneLineParserErrors())
