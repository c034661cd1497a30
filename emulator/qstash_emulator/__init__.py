"""A local emulator of Upstash QStash: signed deliveries, retries, DLQ and logs on one clock."""

from typing import TYPE_CHECKING, Any

from .core.clock import Clock, RealClock, VirtualClock
from .core.errors import ApiError
from .core.signing import verify as verify_signature
from .core.users import User

if TYPE_CHECKING:
    from .emulator import Emulator

__all__ = ["ApiError", "Clock", "Emulator", "RealClock", "User", "VirtualClock", "verify_signature"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: the CLI's verbs (`qstash-emulator advance 1h`) need none of the server.
    if name == "Emulator":
        from .emulator import Emulator

        return Emulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
