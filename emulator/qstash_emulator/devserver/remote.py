"""The client behind the CLI verbs that drive a running server (`qstash-emulator advance 1h`).

Plain HTTP to its /__emulator/ routes with the user's token, standard library only.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlencode

from ..core.users import DEV_SERVER_USERS, dev_token

__all__ = ["DEFAULT_URL", "Remote", "RemoteError", "default_token", "default_url"]

DEFAULT_URL = "http://127.0.0.1:8080"


def default_url() -> str:
    """$QSTASH_URL, or the dev server's default address."""
    return os.environ.get("QSTASH_URL") or DEFAULT_URL


def default_token() -> str:
    """$QSTASH_TOKEN, or the default dev user's token."""
    user_id, password = DEV_SERVER_USERS[0][:2]
    return os.environ.get("QSTASH_TOKEN") or dev_token(user_id, password)


class RemoteError(Exception):
    """The server answered an error (status and its message) or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Remote:
    """A running emulator at `url`, called with `token`."""

    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 600):
        self.url = (url or default_url()).rstrip("/")
        self.token = token or default_token()
        self.timeout = timeout

    def call(self, method: str, path: str, **query: Any) -> Any:
        """One request; the decoded JSON answer, or RemoteError."""
        params = {k: str(v) for k, v in query.items() if v is not None}
        url = self.url + path + ("?" + urlencode(params) if params else "")
        request = urllib.request.Request(
            url, method=method, headers={"Authorization": f"Bearer {self.token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                message = json.loads(raw).get("error") or raw.decode()
            except (ValueError, AttributeError):
                message = raw.decode("utf-8", "replace") or str(exc.reason)
            raise RemoteError(f"{exc.code}: {message}", exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RemoteError(f"cannot reach the emulator at {self.url}: {reason}") from None
        return json.loads(raw) if raw.strip() else None

    # -- the verbs ------------------------------------------------------------------------------
    def now(self) -> dict[str, Any]:
        """The clock."""
        answer: dict[str, Any] = self.call("GET", "/__emulator/clock")
        return answer

    def advance(self, by: str) -> dict[str, Any]:
        """Move a virtual clock forward by a duration (`1h30m`)."""
        answer: dict[str, Any] = self.call("POST", "/__emulator/advance", by=by)
        return answer

    def run_until_idle(self, limit: str | None = None) -> dict[str, Any]:
        """Run due work, jumping time, until none is left (within `limit`)."""
        answer: dict[str, Any] = self.call("POST", "/__emulator/run-until-idle", limit=limit)
        return answer

    def settle(self) -> dict[str, Any]:
        """Wait for work due now, without moving time."""
        answer: dict[str, Any] = self.call("POST", "/__emulator/settle")
        return answer

    def reset(self, seed: int | None = None) -> dict[str, Any]:
        """Forget all state (seeded state is applied again)."""
        answer: dict[str, Any] = self.call("POST", "/__emulator/reset", seed=seed)
        return answer

    def trigger(self, schedule_id: str) -> Any:
        """Fire a schedule now; the publish answer."""
        return self.call("POST", f"/__emulator/schedules/{quote(schedule_id, safe='')}/trigger")

    def run_now(self, message_id: str) -> None:
        """Deliver a delayed or retrying message now."""
        self.call("POST", f"/v2/messages/{quote(message_id, safe='')}/retry")
