"""A local emulator of Upstash QStash: signed deliveries, retries, DLQ and logs on one clock."""

from .core.clock import Clock, RealClock, VirtualClock
from .core.errors import ApiError
from .core.signing import verify as verify_signature
from .core.users import User
from .emulator import Emulator

__all__ = ["ApiError", "Clock", "Emulator", "RealClock", "User", "VirtualClock", "verify_signature"]
