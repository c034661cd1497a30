"""The one entry point that publishes a message spec to any destination.

    Destinations.publish(user, destination, spec, body, *, caller_ip,
                         queue_name=None, schedule_id=None, **fields) -> dict | list[dict]

- `destination`: an http(s) URL, or a URL group name (one message per endpoint, each with
  topic_name/endpoint_name set), or whatever a resolver in `Destinations.resolvers` claims
  (the LLM gateway's).
- `queue_name`: enqueue into that queue; it is created with parallelism 1 on first use, an
  existing queue keeps its settings.
- `schedule_id`: set on every message created (cron firings).
- `fields`: further `Message` fields for every message created (e.g. `api`, `subject`).
- Deduplication (`spec.dedup_id`, `spec.content_dedup`) is applied per created message, in one
  window shared by publish, enqueue, batch and schedules; for a group the key is per endpoint.

Returns QStash's publish shape: `{"messageId": ..., "deduplicated": true?}` for a URL, a list of
`{"messageId", "url", "deduplicated"?}` for a URL group. Every check (destination, group, queue
name and quota) runs before anything is created, so an ApiError leaves no state behind. The body
size is the caller's to check (`engine.check_body`), before calling.

`Destinations.plan` + `execute` split the same work for callers that validate many messages
first (batch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..core.engine import Engine
from ..core.errors import ApiError, bad_request, not_found
from ..core.users import User
from ..parsing.publish_headers import MessageSpec, check_url, is_url
from .queues import NAME, Queues
from .url_groups import UrlGroups

__all__ = ["BatchItem", "Destinations", "Fanout", "Plan", "Resolver", "status_of"]


@dataclass
class Fanout:
    """One message a destination resolves to."""

    url: str
    fields: dict[str, Any] = field(default_factory=dict)  # Message fields (topic_name, api...)
    dedup_destination: str | None = None  # what deduplication keys on (default: url)
    reply_url: bool = False  # group members answer with their url
    # Checks the message's spec and body before anything is created (LLM: callback required).
    check: Callable[[MessageSpec, bytes], None] | None = None


# A resolver claims a destination (return its fan-out) or passes (None); may raise ApiError.
Resolver = Callable[[User, str], "list[Fanout] | None"]


@dataclass
class Plan:
    """A resolved destination: the URLs a publish fans out to, and the queue it goes through."""

    destination: str
    fanout: list[Fanout]
    queue_name: str | None

    @property
    def group(self) -> bool:
        """Answered with a list (URL groups, or a resolver's several messages)."""
        return len(self.fanout) != 1 or any(f.reply_url for f in self.fanout)


def status_of(answer: dict[str, Any] | list[dict[str, Any]]) -> int:
    """QStash answers a duplicate with 202 Accepted (a group: when every member was one)."""
    items = answer if isinstance(answer, list) else [answer]
    return 202 if items and all(a.get("deduplicated") for a in items) else 200


@dataclass
class BatchItem:
    """One parsed batch entry."""

    destination: str
    spec: MessageSpec
    body: bytes
    queue_name: str | None = None


class Destinations:
    """Resolves destinations (resolvers, URLs, URL groups) and publishes to them."""

    def __init__(self, engine: Engine, queues: Queues, url_groups: UrlGroups) -> None:
        self.engine = engine
        self.queues = queues
        self.url_groups = url_groups
        # Claim destinations before URLs and URL groups, in order (the backend fills it).
        self.resolvers: list[Resolver] = []

    def plan(
        self,
        user: User,
        destination: str,
        *,
        queue_name: str | None = None,
        spec: MessageSpec | None = None,
        body: bytes = b"",
    ) -> Plan:
        """Resolve a destination and check the queue without changing anything.

        With `spec`, also check what the claiming resolver requires of the message.
        """
        if queue_name is not None:
            self.queues.check_room(user, [queue_name])
        if spec is not None:
            for check in self.engine.publish_checks:
                check(user, spec)
        for resolver in self.resolvers:
            claimed = resolver(user, destination)
            if claimed is not None:
                if not claimed:
                    raise bad_request(f"destination {destination!r} has no endpoints")
                for target in claimed:
                    if target.check is not None and spec is not None:
                        target.check(spec, body)
                return Plan(destination, claimed, queue_name)
        if is_url(destination):
            return Plan(destination, [Fanout(destination)], queue_name)
        if destination.lower().startswith(("http://", "https://")):
            check_url(destination, "destination")  # a URL that could never be sent: say why
        if not NAME.match(destination):
            raise bad_request(
                f"invalid destination: {destination!r} is neither a URL (http:// or https://) "
                "nor a URL group"
            )
        group = self.url_groups.find(user, destination)
        if group is None:
            raise not_found(f"url group {destination} not found")
        fanout = [
            Fanout(
                e.url,
                {"topic_name": group.name, "endpoint_name": e.name},
                dedup_destination=f"{group.name}|{e.url}",
                reply_url=True,
            )
            for e in group.endpoints
        ]
        return Plan(destination, fanout, queue_name)

    def execute(
        self,
        user: User,
        planned: Plan,
        spec: MessageSpec,
        body: bytes,
        *,
        caller_ip: str,
        schedule_id: str | None = None,
        **fields: Any,
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """Publish a plan: one message per fan-out target, through its queue if it has one.

        Returns:
            QStash's publish answer: one object, or a list for URL groups (and resolvers that
            make several messages).
        """
        if planned.queue_name is not None:
            self.queues.ensure(user, planned.queue_name)
            fields["queue_name"] = planned.queue_name
        if schedule_id is not None:
            fields["schedule_id"] = schedule_id
        answers: list[dict[str, Any]] = []
        for target in planned.fanout:
            answer = self.engine.publish_url(
                user,
                target.url,
                spec,
                body,
                caller_ip=caller_ip,
                dedup_destination=target.dedup_destination,
                **{**fields, **target.fields},
            )
            if target.reply_url:
                answer = {
                    "messageId": answer["messageId"],
                    "url": target.url,
                    **({"deduplicated": True} if answer.get("deduplicated") else {}),
                }
            answers.append(answer)
        return answers if planned.group else answers[0]

    def publish(
        self,
        user: User,
        destination: str,
        spec: MessageSpec,
        body: bytes,
        *,
        caller_ip: str,
        queue_name: str | None = None,
        schedule_id: str | None = None,
        **fields: Any,
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """Publish (or enqueue) to a URL, URL group or claimed destination; see the module doc."""
        planned = self.plan(user, destination, queue_name=queue_name, spec=spec, body=body)
        return self.execute(
            user, planned, spec, body, caller_ip=caller_ip, schedule_id=schedule_id, **fields
        )

    def publish_batch(
        self, user: User, items: list[BatchItem], *, caller_ip: str
    ) -> list[dict[str, Any] | list[dict[str, Any]]]:
        """Plan every item first (any error fails the whole batch, naming it), then publish."""
        plans: list[Plan] = []
        for i, item in enumerate(items):
            try:
                plans.append(
                    self.plan(
                        user,
                        item.destination,
                        queue_name=item.queue_name,
                        spec=item.spec,
                        body=item.body,
                    )
                )
            except ApiError as exc:
                # In a batch an unknown URL group is a malformed entry, as any other.
                status = 400 if exc.status == 404 else exc.status
                raise ApiError(status, f"message {i}: {exc.message}") from None
        self.queues.check_room(user, {p.queue_name for p in plans if p.queue_name is not None})
        return [
            self.execute(user, p, item.spec, item.body, caller_ip=caller_ip)
            for p, item in zip(plans, items, strict=True)
        ]
