"""Who may see the dashboard and act through it.

Pages are served only on a local origin (the request's Host is a loopback name or address:
127.0.0.1, localhost, [::1]...): a page reached through another host name (DNS rebinding) is
refused. Serving a page sets the
server's dashboard key in a cookie (`qstash_dashboard_key_<port>`; HttpOnly, SameSite=Strict,
path /__dashboard) and puts the
same key in the page; every action must carry it twice, in the cookie and in the
`X-Dashboard-Key` header. Another site cannot read the page, cannot send the SameSite cookie
and cannot add the header without a CORS preflight (which the dashboard never allows).
"""

from __future__ import annotations

import hmac
import secrets

from aiohttp import web

from ..core.errors import ApiError
from ..http.local_only import host_only, is_loopback

__all__ = [
    "COOKIE",
    "HEADER",
    "KEY",
    "check_action",
    "cookie_name",
    "is_local",
    "new_key",
    "require_local",
    "set_key_cookie",
]

KEY = web.AppKey("dashboard_key", str)
COOKIE = "qstash_dashboard_key"
HEADER = "X-Dashboard-Key"


def new_key() -> str:
    """A fresh random dashboard key (one per server)."""
    return secrets.token_urlsafe(32)


def is_local(request: web.Request) -> bool:
    """Whether the request's Host names this machine by a loopback name or address.

    Stricter than the API's check (`http.local_only`): names allowed with `--allow-host` reach
    the API, never the dashboard and its actions.
    """
    host = request.headers.get("Host")
    return host is not None and is_loopback(host_only(host))


def require_local(request: web.Request) -> None:
    """Refuse (403) a request that does not name a local host."""
    if not is_local(request):
        raise ApiError(403, "the dashboard is served on local origins only (127.0.0.1, localhost)")


def cookie_name(request: web.Request, base: str = COOKIE) -> str:
    """Cookies ignore ports: a name per port keeps two emulators on one host apart."""
    return f"{base}_{request.url.port or 80}"


def set_key_cookie(request: web.Request, response: web.StreamResponse) -> None:
    """Give the page's browser the dashboard key (HttpOnly, SameSite=Strict)."""
    response.set_cookie(
        cookie_name(request),
        request.app[KEY],
        path="/__dashboard",
        httponly=True,
        samesite="Strict",
    )


def check_action(request: web.Request) -> None:
    """Refuse an action without the dashboard key in both the cookie and the header."""
    require_local(request)
    key = request.app[KEY]
    header = request.headers.get(HEADER, "")
    cookie = request.cookies.get(cookie_name(request), "")
    if not (hmac.compare_digest(header, key) and hmac.compare_digest(cookie, key)):
        raise ApiError(
            403, "dashboard actions need the dashboard key (open the dashboard page first)"
        )
