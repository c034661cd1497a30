"""What a test reads about a delivery: one attempt as it left the emulator, signature checked."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from qstash_emulator.core.signing import verify
from qstash_emulator.core.state import Delivered

__all__ = ["DeliveredMessage", "Verdict", "check_signature", "iso"]

# Snapshots replace the emulator's address (a new port every run) with this.
_SNAPSHOT_HOST = "http://qstash-emulator"
# Differs on every run (it carries the wall time), so snapshots leave it out.
_UNSTABLE_HEADERS = frozenset({"upstash-signature"})


@dataclass(frozen=True)
class Verdict:
    """The signature check of one delivery: claims when valid, else why not."""

    claims: Mapping[str, Any] | None
    error: str | None


def _header_of(headers: list[tuple[str, str]], name: str) -> str | None:
    lower = name.lower()
    return next((v for k, v in headers if k.lower() == lower), None)


def check_signature(record: Delivered) -> Verdict:
    """Verify as the destination's Receiver would, with the user's current and next keys."""
    signature = _header_of(record.headers, "Upstash-Signature")
    if signature is None:
        return Verdict(None, "no Upstash-Signature header")
    user = record.message.user
    try:
        claims = verify(
            signature,
            [user.current_signing_key, user.next_signing_key],
            body=record.body,
            url=record.message.subject or record.message.url,
        )
    except ValueError as exc:
        return Verdict(None, str(exc))
    return Verdict(claims, None)


def iso(t: float) -> str:
    """Unix seconds as an ISO 8601 UTC time with milliseconds ("...Z")."""
    stamp = datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


@dataclass(frozen=True)
class DeliveredMessage:
    """One delivery attempt: request as sent, the destination's answer, signature verdict."""

    record: Delivered
    verdict: Verdict
    base_url: str  # the emulator's address (snapshots replace it)

    # -- the request ----------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The URL the attempt went to."""
        return self.record.url

    @property
    def method(self) -> str:
        """The HTTP method."""
        return self.record.method

    @property
    def headers(self) -> list[tuple[str, str]]:
        """The headers as sent, in order."""
        return list(self.record.headers)

    def header(self, name: str) -> str | None:
        """The first value of a header (case-insensitive), or None."""
        return _header_of(self.record.headers, name)

    @property
    def body(self) -> bytes:
        """The body as sent."""
        return self.record.body

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.record.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.record.body)

    @property
    def time(self) -> float:
        """When it was sent, on the emulator's clock (Unix seconds)."""
        return self.record.time

    @property
    def retried(self) -> int:
        """How many attempts came before this one (0: the first)."""
        return self.record.retried

    # -- the message ----------------------------------------------------------------------
    @property
    def message_id(self) -> str:
        """The QStash message id."""
        return self.record.message.id

    @property
    def kind(self) -> str:
        """What was delivered: "message", "callback" or "failure_callback"."""
        return self.record.message.kind

    @property
    def schedule_id(self) -> str | None:
        """The schedule that published the message, if any."""
        return self.record.message.schedule_id

    @property
    def queue_name(self) -> str | None:
        """The queue the message went through, if any."""
        return self.record.message.queue_name

    @property
    def url_group(self) -> str | None:
        """The URL group (topic) the message was published to, if any."""
        return self.record.message.topic_name

    @property
    def user(self) -> str:
        """The name of the user who published it."""
        return self.record.message.user.name

    # -- the answer -----------------------------------------------------------------------
    @property
    def status(self) -> int | None:
        """The destination's status; None while in flight or when it did not answer."""
        response = self.record.response
        return None if response is None else response.status

    @property
    def response_body(self) -> bytes | None:
        """The destination's answer body; None while in flight or when it did not answer."""
        response = self.record.response
        return None if response is None else response.body

    @property
    def error(self) -> str | None:
        """Why there was no answer (timeout, connection refused), if so."""
        response = self.record.response
        return None if response is None else response.error

    # -- the signature --------------------------------------------------------------------
    @property
    def signed(self) -> bool:
        """True when Upstash-Signature verifies (key, issuer, subject URL, body hash, time)."""
        return self.verdict.claims is not None

    @property
    def claims(self) -> Mapping[str, Any] | None:
        """The verified JWT claims of the signature, or None when it did not verify."""
        return self.verdict.claims

    @property
    def signature_error(self) -> str | None:
        """Why the signature did not verify, or None when it did."""
        return self.verdict.error

    # -- output ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """A dict that is the same on every run with the same seed (for snapshot tests).

        No signature, the emulator's address replaced by `_SNAPSHOT_HOST`, ISO times.
        """

        def stable(value: str) -> str:
            return value.replace(self.base_url, _SNAPSHOT_HOST)

        return {
            "message_id": self.message_id,
            "kind": self.kind,
            "method": self.method,
            "url": stable(self.url),
            "headers": [
                [k, stable(v)] for k, v in self.record.headers if k.lower() not in _UNSTABLE_HEADERS
            ],
            "body": self.text,
            "time": iso(self.time),
            "retried": self.retried,
            "status": self.status,
            "signed": self.signed,
        }

    def describe(self, start: float | None = None) -> str:
        """One line for failure messages and logs."""
        answer = self.error or ("in flight" if self.record.response is None else self.status)
        when = f"t=+{self.time - start:g}s" if start is not None else f"t={iso(self.time)}"
        kind = "" if self.kind == "message" else f" [{self.kind}]"
        return (
            f"{self.method} {self.url}{kind}  {self.message_id}  retried={self.retried}"
            f"  -> {answer}  {when}"
        )

    def __repr__(self) -> str:
        return f"<DeliveredMessage {self.describe()}>"
