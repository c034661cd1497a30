"""URL groups (QStash's "topics"): named sets of endpoints a publish fans out to.

State is kept here per user name; the backend's reset clears it. Endpoints keep the order they
were added in, so a fan-out creates its messages (and ids) in the same order every run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.clock import ms
from ..core.engine import Engine
from ..core.errors import ApiError, bad_request, not_found
from ..core.users import User
from ..parsing.publish_headers import is_url
from ..store.base import URL_GROUP
from .queues import check_name

__all__ = ["Endpoint", "UrlGroup", "UrlGroups", "parse_endpoints"]


@dataclass
class Endpoint:
    """One endpoint of a URL group: a URL and an optional name."""

    url: str
    name: str | None = None

    def json(self) -> dict[str, str]:
        """The endpoint as QStash's API shows it."""
        out = {"url": self.url}
        if self.name:
            out["name"] = self.name
        return out


@dataclass
class UrlGroup:
    """One user's URL group (topic): its endpoints, times in seconds."""

    name: str
    created_at: float
    updated_at: float
    endpoints: list[Endpoint] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        """The group as GET /v2/topics answers it."""
        return {
            "name": self.name,
            "createdAt": ms(self.created_at),
            "updatedAt": ms(self.updated_at),
            "endpoints": [e.json() for e in self.endpoints],
        }


def parse_endpoints(data: Any, *, removing: bool = False) -> list[Endpoint]:
    """`{"endpoints": [{"url", "name"?}]}` from a request body; removal needs a url or a name."""
    items = data.get("endpoints") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise bad_request('request body must be {"endpoints": [{"url": ..., "name": ...}, ...]}')
    out: list[Endpoint] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise bad_request(f"endpoint {i}: must be an object with url and/or name")
        url, name = item.get("url"), item.get("name")
        if url is not None and (not isinstance(url, str) or not is_url(url)):
            raise bad_request(
                f"endpoint {i}: invalid url {url!r}: it must start with http:// or https://"
            )
        if name is not None and not isinstance(name, str):
            raise bad_request(f"endpoint {i}: name must be a string")
        if removing and not url and not name:
            raise bad_request(f"endpoint {i}: give the url or the name of the endpoint to remove")
        if not removing and not url:
            raise bad_request(f"endpoint {i}: url is required")
        out.append(Endpoint(url or "", name or None))
    return out


class UrlGroups:
    """Every user's URL groups (one per backend).

    Args:
        engine: The engine whose clock stamps the groups.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._groups: dict[str, dict[str, UrlGroup]] = {}

    def reset(self) -> None:
        """Forget every group (a test's reset)."""
        self._groups.clear()

    def _of(self, user: User) -> dict[str, UrlGroup]:
        return self._groups.setdefault(user.name, {})

    def find(self, user: User, name: str) -> UrlGroup | None:
        """The user's group `name`, or None."""
        return self._of(user).get(name)

    def get(self, user: User, name: str) -> UrlGroup:
        """The user's group `name`.

        Raises:
            ApiError: 404 for an unknown group.
        """
        group = self.find(user, name)
        if group is None:
            raise not_found(f"url group {name} not found")
        return group

    def all(self, user: User) -> list[UrlGroup]:
        """The user's groups, oldest first."""
        return sorted(self._of(user).values(), key=lambda g: (g.created_at, g.name))

    def upsert(self, user: User, name: str, endpoints: Sequence[Endpoint]) -> UrlGroup:
        """Add endpoints, creating the group; an endpoint with a known name or url is updated."""
        check_name(name, "url group")
        groups = self._of(user)
        group = groups.get(name)
        if group is None and len(groups) >= user.quota.max_url_groups:
            raise ApiError(
                412,
                f"exceeded the maximum number of url groups "
                f"({user.quota.max_url_groups}) of the {user.quota.name} plan",
            )
        merged = [Endpoint(e.url, e.name) for e in group.endpoints] if group else []
        for new in endpoints:
            same = next((e for e in merged if new.name and e.name == new.name), None)
            same = same or next((e for e in merged if e.url == new.url), None)
            if same is None:
                merged.append(Endpoint(new.url, new.name))
            else:
                same.url, same.name = new.url, new.name or same.name
        if len(merged) > user.quota.max_endpoints_per_group:
            raise ApiError(
                412,
                f"exceeded the maximum number of endpoints per url group "
                f"({user.quota.max_endpoints_per_group}) of the "
                f"{user.quota.name} plan",
            )
        now = self.engine.clock.now()
        if group is None:
            group = groups[name] = UrlGroup(name, now, now)
        group.endpoints = merged
        group.updated_at = now
        self.engine.store.put(URL_GROUP, user.name, name, group)
        return group

    def restore(self, user: User, group: UrlGroup) -> None:
        """A group loaded from a store (at startup)."""
        self._of(user)[group.name] = group

    def remove(self, user: User, name: str, endpoints: Sequence[Endpoint]) -> None:
        """Remove the endpoints matching every field given; an emptied group is deleted."""
        group = self.get(user, name)

        def removed(e: Endpoint) -> bool:
            return any(
                (not sel.url or sel.url == e.url) and (not sel.name or sel.name == e.name)
                for sel in endpoints
            )

        group.endpoints = [e for e in group.endpoints if not removed(e)]
        group.updated_at = self.engine.clock.now()
        if not group.endpoints:
            del self._of(user)[name]
            self.engine.store.delete(URL_GROUP, user.name, name)
        else:
            self.engine.store.put(URL_GROUP, user.name, name, group)

    def delete(self, user: User, name: str) -> None:
        """Delete a group (messages already published to it are delivered as usual).

        Deleting a group that does not exist is not an error (the official suites delete
        before they create).
        """
        if self._of(user).pop(name, None) is not None:
            self.engine.store.delete(URL_GROUP, user.name, name)
