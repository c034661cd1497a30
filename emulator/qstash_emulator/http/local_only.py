"""Only local callers: a web page the developer happens to visit must not drive the emulator.

Browsers attach `Origin` (and `Sec-Fetch-Site`) to cross-site requests, even "simple" ones that
skip CORS preflight (a POST with `Content-Type: text/plain` and `?qstashToken=` in the URL), so a
request from a foreign origin is refused with 403. A foreign `Host` is refused too: that is DNS
rebinding (a foreign name resolving to 127.0.0.1). The official SDKs and curl send no `Origin`
and name the server by the address they were given. More origins and hosts can be allowed
(`--allow-origin`, `--allow-host`; `Emulator(allowed_origins=..., allowed_hosts=...)`).

This runs for every route of the app: the API, captures, the LLM routes and the dashboard.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiohttp import web

from ..core.errors import ApiError
from .common import ERROR_RENDERERS, Handler, json_response

__all__ = [
    "LOCAL_ONLY",
    "LocalOnly",
    "host_only",
    "is_loopback",
    "local_only_middleware",
    "refusal",
]

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


@dataclass
class LocalOnly:
    """Which hosts and origins count as local. `*` in either allows any."""

    hosts: set[str] = field(default_factory=set)  # extra Host names (lower case, no port)
    origins: set[str] = field(default_factory=set)  # extra origins: "https://app.example:8443"
    # Host headers already judged: every request carries one, and they are nearly always the same.
    _judged: dict[str, bool] = field(default_factory=dict, repr=False)

    def allow_hosts(self, hosts: Iterable[str]) -> None:
        """Also accept these Host names (a port, if given, is ignored)."""
        self.hosts.update(host_only(h) for h in hosts)
        self._judged.clear()

    def allow_origins(self, origins: Iterable[str]) -> None:
        """Also accept requests from these origins ("https://app.example:8443")."""
        self.origins.update(o.strip().rstrip("/").lower() for o in origins)

    def serve_on(self, bind_host: str) -> None:
        """Accept the names the server answers to: its bind address, and the machine's name.

        The machine's own name only on a wildcard bind (the LAN reaches it by that).
        """
        self.hosts.add(host_only(bind_host))
        if bind_host in ("0.0.0.0", "::", ""):
            self.hosts.update({socket.gethostname().lower(), socket.getfqdn().lower()})
        self._judged.clear()

    def host_ok(self, host: str | None) -> bool:
        """Whether a Host header names this server (a loopback name or one allowed)."""
        if not host:
            return True  # HTTP/1.0 without Host: nothing to rebind
        judged = self._judged.get(host)
        if judged is None:
            name = host_only(host)
            judged = "*" in self.hosts or is_loopback(name) or name in self.hosts
            if len(self._judged) >= 256:  # any number of names may be tried: keep a few
                self._judged.clear()
            self._judged[host] = judged
        return judged

    def origin_ok(self, origin: str) -> bool:
        """Whether an Origin is local (a page served from this machine) or allowed."""
        if "*" in self.origins:
            return True
        if origin.strip().rstrip("/").lower() in self.origins:
            return True
        parts = urlsplit(origin.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False  # "null" (sandboxed pages, file://) and other schemes
        return self.host_ok(parts.netloc)


def is_loopback(name: str) -> bool:
    """Whether a host name is a loopback name or address."""
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_only(host: str) -> str:
    """Drop the port and brackets: "127.0.0.1:8080" -> "127.0.0.1", "[::1]:80" -> "::1"."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host[1:]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


LOCAL_ONLY = web.AppKey("local_only", LocalOnly)


def refusal(request: web.Request, local: LocalOnly) -> str | None:
    """Why the request is refused, or None."""
    if not local.host_ok(request.headers.get("Host")):
        return (
            f"Forbidden: Host {request.headers.get('Host')!r} is not this emulator's name (DNS "
            "rebinding?); allow it with --allow-host"
        )
    origin = request.headers.get("Origin")
    if origin is not None:
        if not local.origin_ok(origin):
            return (
                f"Forbidden: requests from the web page at {origin!r} are refused; allow the "
                "origin with --allow-origin"
            )
        return None
    if request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
        return "Forbidden: cross-site requests from web pages are refused"
    return None


@web.middleware
async def local_only_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse (403) requests from web pages and foreign Host names; pass the rest on."""
    local = request.app.get(LOCAL_ONLY)
    problem = refusal(request, local) if local is not None else None
    if problem is None:
        return await handler(request)
    exc = ApiError(403, problem)
    for prefix, render in request.app.get(ERROR_RENDERERS, ()):
        if request.path.startswith(prefix):
            rendered: web.Response = render(request, exc)
            return rendered
    return json_response({"error": exc.message}, exc.status)
