"""The dashboard's own routing: one aiohttp GET route and one POST route, dispatched here.

A score of aiohttp routes and a static route cost every new emulator about half a millisecond
(a test's fresh server pays it); this table is compiled once per process. Static files are read
once per process too.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

__all__ = ["Handler", "asset_url", "compile_table", "dispatcher", "static_file"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Table = list[tuple[re.Pattern[str], Handler]]

STATIC = Path(__file__).parent / "static"
_FILES: dict[str, tuple[bytes, str, str]] = {}  # name -> (content, content type, version)


def compile_table(routes: list[tuple[str, Handler]]) -> Table:
    """Paths like "/messages/{messageId}" (one segment per parameter) as patterns."""
    return [(re.compile(re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", p)), h) for p, h in routes]


def dispatcher(table: Table) -> Handler:
    """A handler that runs the first route of `table` matching the path's `tail`."""

    async def dispatch(request: web.Request) -> web.StreamResponse:
        tail = request.match_info.get("tail", "")
        for pattern, handler in table:
            found = pattern.fullmatch(tail)
            if found is not None:
                request.match_info.update(found.groupdict())  # handlers read match_info
                return await handler(request)
        raise web.HTTPNotFound()

    return dispatch


def _load(name: str) -> tuple[bytes, str, str] | None:
    found = _FILES.get(name)
    if found is None:
        path = STATIC / name
        if "/" in name or name.startswith(".") or not path.is_file():
            return None
        data = path.read_bytes()
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        found = _FILES[name] = (data, kind, hashlib.sha256(data).hexdigest()[:12])
    return found


def asset_url(prefix: str, name: str) -> str:
    """A static file's URL with its content hash (a changed file is fetched anew)."""
    found = _load(name)
    return f"{prefix}/static/{name}" + (f"?v={found[2]}" if found else "")


async def static_file(request: web.Request) -> web.StreamResponse:
    """GET /__dashboard/static/{name}: the dashboard's script and stylesheet."""
    found = _load(request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound()
    data, kind, _version = found
    charset = "utf-8" if kind.startswith("text/") or kind.endswith("javascript") else None
    return web.Response(
        body=data,
        content_type=kind,
        charset=charset,
        headers={"Cache-Control": "public, max-age=3600"},
    )
