"""Finished messages stay readable through `GET /v2/messages/{id}` for a while.

QStash removes a message "shortly after" it is delivered; apps and the SDKs' own tests publish
and read the message back at once. A local delivery can finish before that read arrives, so a
delivered or failed message is kept here, as it was when it finished, for `window` seconds of
the emulator's clock. Cancelled messages are not kept: cancelling removes a message at once.

Kept apart from the pending messages and the logs on purpose: nothing that counts or lists
pending work (queues, bulk cancel, flow control) sees these.
"""

from __future__ import annotations

from collections import OrderedDict

from .clock import Clock
from .state import Message

__all__ = ["DEFAULT_WINDOW", "FinishedMessages"]

DEFAULT_WINDOW = 60.0  # seconds


class FinishedMessages:
    """Delivered and failed messages, readable by id for `window` seconds after they finished.

    Args:
        clock: The emulator's clock (virtual or real); the window runs on it.
        window: Seconds a finished message stays readable; 0 keeps none.

    Raises:
        ValueError: For a negative window.
    """

    def __init__(self, clock: Clock, window: float = DEFAULT_WINDOW) -> None:
        if window < 0:
            raise ValueError("the retention window of finished messages cannot be negative")
        self.clock = clock
        self.window = window
        # (user name, message id) -> (expiry, message), in the order they finished.
        self._kept: OrderedDict[tuple[str, str], tuple[float, Message]] = OrderedDict()

    def keep(self, message: Message) -> None:
        """Keep a message that just finished (and forget those whose window has passed)."""
        now = self.clock.now()
        self._prune(now)
        if self.window <= 0:
            return
        key = (message.user.name, message.id)
        self._kept.pop(key, None)
        self._kept[key] = (now + self.window, message)

    def get(self, user_name: str, message_id: str) -> Message | None:
        """The user's finished message with this id, while its window lasts; else None."""
        found = self._kept.get((user_name, message_id))
        if found is None:
            return None
        expiry, message = found
        if self.clock.now() >= expiry:
            del self._kept[(user_name, message_id)]
            return None
        return message

    def _prune(self, now: float) -> None:
        # Entries were added in finishing order, so expiries only grow along the dict.
        while self._kept:
            key, (expiry, _) = next(iter(self._kept.items()))
            if expiry > now:
                return
            del self._kept[key]

    def clear(self) -> None:
        """Forget every kept message (a reset)."""
        self._kept.clear()

    def __len__(self) -> int:
        return len(self._kept)
