"""Official SDK clients pointed at a test's emulator, built once per session.

The SDK builds a new httpx client (and loads the CA bundle, ~20 ms) in every constructor, so a
client per test would cost more than the whole test. One sync client per token is kept and
re-pointed; async clients get a fresh httpx client per test (cheap with a cached SSL context,
no keep-alive so nothing outlives the test's event loop, whatever its scope).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from qstash import AsyncQStash, QStash, Receiver

__all__ = ["Clients"]


def _sdk() -> Any:
    try:
        import qstash
    except ImportError:  # the SDK is the app's dependency, not the plugin's
        pytest.fail(
            "the qstash SDK is not installed: pip install qstash (or 'qstash-emulator[pytest]')",
            pytrace=False,
        )
    return qstash


class Clients:
    """Official `qstash` SDK clients pointed at the emulator, one per token, reused across tests.

    The SDK is imported on first use, so the plugin works without it until a client fixture
    is requested.
    """

    def __init__(self) -> None:
        self._sync: dict[str, QStash] = {}
        self._async: dict[str, AsyncQStash] = {}
        self._ssl: Any = None

    def sync(self, token: str, base_url: str) -> QStash:
        """A `QStash` client for `token` at `base_url` (no SDK-side retries)."""
        client = self._sync.get(token)
        if client is None:
            client = _sdk().QStash(token, base_url=base_url, retry=False)
            self._sync[token] = client
        http = client.http
        if hasattr(http, "_base_url"):
            http._base_url = base_url
        else:  # an SDK that changed its internals: build one (slower, still right)
            client = _sdk().QStash(token, base_url=base_url, retry=False)
        return client

    def async_(self, token: str, base_url: str) -> AsyncQStash:
        """An `AsyncQStash` client for `token` at `base_url` (no SDK-side retries).

        Its HTTP client is bound to no event loop until first used, so any test's loop may use it.
        """
        import httpx

        client = self._async.get(token)
        if client is None:
            client = _sdk().AsyncQStash(token, base_url=base_url, retry=False)
            self._async[token] = client
        http = client.http
        if not (hasattr(http, "_client") and hasattr(http, "_base_url")):
            return _sdk().AsyncQStash(token, base_url=base_url, retry=False)  # type: ignore[no-any-return]
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        from qstash.http import DEFAULT_TIMEOUT

        # Bound to no loop until first used, and closes every connection after its response.
        http._client = httpx.AsyncClient(
            timeout=DEFAULT_TIMEOUT,
            verify=self._ssl,
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        http._base_url = base_url
        return client

    @staticmethod
    def receiver(current: str, next_key: str) -> Receiver:
        """A `Receiver` that verifies signatures made with these keys."""
        return _sdk().Receiver(current_signing_key=current, next_signing_key=next_key)  # type: ignore[no-any-return]
