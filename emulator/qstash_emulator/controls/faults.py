"""Faults a test scripts on a destination: failures, timeouts, dropped connections, 429s.

A fault answers a delivery attempt in place of the destination (a delivery interceptor); once its
answers are used up, attempts reach the real destination again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.delivery import Outgoing
from ..core.state import Response
from ..parsing import header_names as h

TIMEOUT = "timeout"  # the destination answers later than the message's timeout
DROP = "drop"  # the connection is cut before an answer
PASS = "pass"  # let this attempt through to the destination

Answer = int | str


@dataclass
class Fault:
    url: str
    answers: list[Answer]
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    repeat: bool = False  # keep giving the last answer instead of passing through
    used: int = 0

    def matches(self, url: str) -> bool:
        if self.url.endswith("*"):
            return url.startswith(self.url[:-1])
        return url == self.url

    def next(self) -> Answer | None:
        if self.used >= len(self.answers) and not self.repeat:
            return None
        answer = self.answers[min(self.used, len(self.answers) - 1)]
        self.used += 1
        return answer


class Faults:
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
                answer = TIMEOUT
            elif drop:
                answer = DROP
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
        self.rules.clear()

    async def intercept(self, outgoing: Outgoing) -> Response | None:
        for fault in self.rules:
            if not fault.matches(outgoing.url):
                continue
            answer = fault.next()
            if answer is None:
                continue
            if answer == PASS:
                return None
            if answer == TIMEOUT:
                return Response(
                    None, {}, b"", error=f"request timed out after {outgoing.timeout:g}s (injected)"
                )
            if answer == DROP:
                return Response(
                    None, {}, b"", error="request failed: connection reset by peer (injected)"
                )
            return Response(int(answer), h.from_pairs(fault.headers.items()), fault.body)
        return None
