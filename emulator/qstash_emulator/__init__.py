"""A local emulator of Upstash QStash: signed deliveries, retries, DLQ and logs on one clock."""

from .clock import Clock, RealClock, VirtualClock
from .emulator import Emulator
from .errors import ApiError
from .scheduler import NotIdleError
from .signing import verify as verify_signature
from .users import User

__all__ = [
    "ApiError",
    "Clock",
    "Emulator",
    "NotIdleError",
    "RealClock",
    "User",
    "VirtualClock",
    "verify_signature",
]
