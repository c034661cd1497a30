"""Faults a test scripts on a destination: failures, timeouts, dropped connections, 429s.

A fault answers a delivery attempt in place of the destination (a delivery interceptor); once its
answers are used up, attempts reach the real destination again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.delivery import Outgoing
from ..core.state import Response
from ..parsing import header_names as h

__all__ = ["Answer", "Fault", "Faults"]

_TIMEOUT = "timeout"  # the destination answers later than the message's timeout
_DROP = "drop"  # the connection is cut before an answer
_PASS = "pass"  # let this attempt through to the destination

Answer = int | str


@dataclass
class Fault:
    """One scripted fault: the answers attempts to `url` (or a prefix ending in `*`) get in turn."""

    url: str
    answers: list[Answer]
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    repeat: bool = False  # keep giving the last answer instead of passing through
    used: int = 0

    def matches(self, url: str) -> bool:
        """Whether the fault applies to a delivery to `url`."""
        if self.url.endswith("*"):
            return url.startswith(self.url[:-1])
        return url == self.url

    def next(self) -> Answer | None:
        """The next scripted answer, or None once they are used up (then attempts pass through)."""
        if self.used >= len(self.answers) and not self.repeat:
            return None
        answer = self.answers[min(self.used, len(self.answers) - 1)]
        self.used += 1
        return answer


class Faults:
    """Injected delivery faults: a delivery interceptor that answers instead of the destination.

    Rules are tried in the order they were added; the first that matches and still has an
    answer decides the attempt.
    """

    def __init__(self) -> None:
        self.rules: list[Fault] = []

    def add(
        self,
        url: str,
        *,
        fail_times: int | None = None,
        status: int = 500,
        statuses: list[Answer] | None = None,
        timeout: bool = False,
        drop: bool = False,
        retry_after: str | None = None,
        non_retryable: bool = False,
        headers: dict[str, str] | None = None,
        body: bytes | str = b"",
        times: int | None = None,
    ) -> Fault:
        """Script what `url` (or every URL under a prefix ending in `*`) answers.

        `fail_times=N` fails N attempts with `status`, then lets them through; `statuses` gives
        each attempt's answer in turn (an int status, "timeout", "drop" or "pass"). `timeout`,
        `drop`, `retry_after` (a 429 with that Retry-After) and `non_retryable` (a 489 with
        Upstash-NonRetryable-Error) apply `times` times, or to every attempt when `times` is None.
        """
        extra = dict(headers or {})
        repeat = False
        if statuses is not None:
            answers = list(statuses)
        elif fail_times is not None:
            answers = [status] * fail_times
        else:
            answer: Answer = status
            if timeout:
                answer = _TIMEOUT
            elif drop:
                answer = _DROP
            elif retry_after is not None:
                answer = 429
                extra.setdefault("Retry-After", retry_after)
            elif non_retryable:
                answer = 489
                extra.setdefault("Upstash-NonRetryable-Error", "true")
            answers = [answer] * (times if times is not None else 1)
            repeat = times is None
        raw = body.encode() if isinstance(body, str) else body
        fault = Fault(url, answers, extra, raw, repeat)
        self.rules.append(fault)
        return fault

    def clear(self) -> None:
        """Remove every rule (a test's reset)."""
        self.rules.clear()

    async def intercept(self, outgoing: Outgoing) -> Response | None:
        """Answer an attempt as a matching rule says, or return None to let it go out.

        A status answers with that status and the rule's headers and body; "timeout" answers as
        a timed-out attempt and "drop" as a cut connection, at once; "pass" lets it through.
        """
        for fault in self.rules:
            if not fault.matches(outgoing.url):
                continue
            answer = fault.next()
            if answer is None:
                continue
            if answer == _PASS:
                return None
            if answer == _TIMEOUT:
                return Response(
                    None, {}, b"", error=f"request timed out after {outgoing.timeout:g}s (injected)"
                )
            if answer == _DROP:
                return Response(
                    None, {}, b"", error="request failed: connection reset by peer (injected)"
                )
            return Response(int(answer), h.from_pairs(fault.headers.items()), fault.body)
        return None
