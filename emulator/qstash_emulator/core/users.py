"""Users: tokens, signing keys and plan quotas. The defaults are the official dev server's."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass

from .ids import b58, digest
from .quotas import QUOTAS, Quota

__all__ = ["DEV_SERVER_USERS", "User", "Users", "dev_token"]


@dataclass
class User:
    """A QStash user: token, signing keys and the plan quota publishes are checked against."""

    name: str
    token: str
    current_signing_key: str
    next_signing_key: str
    quota: Quota

    def env(self, url: str) -> dict[str, str]:
        """The environment variables an app needs to reach the emulator at `url` as this user."""
        return {
            "QSTASH_URL": url,
            "QSTASH_TOKEN": self.token,
            "QSTASH_CURRENT_SIGNING_KEY": self.current_signing_key,
            "QSTASH_NEXT_SIGNING_KEY": self.next_signing_key,
        }


# (user id, password, current key, next key) exactly as `qstash dev` prints them.
DEV_SERVER_USERS = [
    (
        "defaultUser",
        "defaultPassword",
        "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r",
        "sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs",
    ),
    (
        "testUser1",
        "testPassword",
        "sig_7GVPjvuwsfqF65iC8fSrs1dfYruM",
        "sig_5NoELc3EFnZn4DVS5bDs2Nk4b7Ua",
    ),
    (
        "testUser2",
        "testPassword",
        "sig_6jWGaWRxHsw4vMSPJprXadyvrybF",
        "sig_7qHbvhmahe5GwfePDiS5Lg3pi6Qx",
    ),
    (
        "testUser3",
        "testPassword",
        "sig_5T8FcSsynBjn9mMLBsXhpacRovJf",
        "sig_7GFR4YaDshFcqsxWRZpRB161jguD",
    ),
]


def dev_token(user_id: str, password: str) -> str:
    """The token `qstash dev` gives a user: base64 of its id and password as JSON."""
    raw = json.dumps({"UserID": user_id, "Password": password}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def _new_signing_key(*parts: object) -> str:
    return "sig_" + b58(digest("signing-key", *parts))[:28]


class Users:
    """The users the emulator accepts, by token and by name.

    Starts with the official dev server's four users (same tokens and signing keys), so apps
    configured for `qstash dev` work unchanged.

    Args:
        quota: The plan tier (a key of `QUOTAS`) of users added without one.
    """

    def __init__(self, quota: str = "payg") -> None:
        self.quota_name = quota
        self._by_token: dict[str, User] = {}
        self._by_name: dict[str, User] = {}
        self._initial: dict[str, tuple[str, str]] = {}
        for user_id, password, current, nxt in DEV_SERVER_USERS:
            self.add(user_id, token=dev_token(user_id, password), current=current, next=nxt)
        self.default = self._by_name["defaultUser"]

    def add(
        self,
        name: str,
        *,
        token: str | None = None,
        current: str | None = None,
        next: str | None = None,
        quota: str | None = None,
    ) -> User:
        """Add a user; missing token and keys are derived from the name (deterministic).

        Args:
            name: The user id.
            token: The QStash token (default: the dev server's form with password "password").
            current: The current signing key.
            next: The next signing key.
            quota: The plan tier (default: the one `Users` was built with).

        Returns:
            The new user.

        Raises:
            ValueError: If a user of that name exists.
        """
        if name in self._by_name:
            raise ValueError(f"user {name!r} exists")
        user = User(
            name=name,
            token=token or dev_token(name, "password"),
            current_signing_key=current or _new_signing_key(name, "current"),
            next_signing_key=next or _new_signing_key(name, "next"),
            quota=QUOTAS[quota or self.quota_name],
        )
        self._by_token[user.token] = user
        self._by_name[name] = user
        self._initial[name] = (user.current_signing_key, user.next_signing_key)
        return user

    def by_token(self, token: str) -> User | None:
        """The user a bearer token belongs to, or None."""
        return self._by_token.get(token)

    def __getitem__(self, name: str) -> User:
        return self._by_name[name]

    def __iter__(self) -> Iterator[User]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def rotate(self, user: User) -> None:
        """The next key becomes current and a fresh next key is made (deterministically)."""
        user.current_signing_key, user.next_signing_key = (
            user.next_signing_key,
            _new_signing_key(user.name, user.next_signing_key),
        )

    def reset_keys(self) -> None:
        """Give every user back the signing keys it was added with (a test's reset)."""
        for name, (current, nxt) in self._initial.items():
            self._by_name[name].current_signing_key = current
            self._by_name[name].next_signing_key = nxt
