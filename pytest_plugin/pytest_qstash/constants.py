"""What the plugin needs before any emulator exists (option help and validation).

Kept here, not read from `qstash_emulator`, so registering the plugin's options costs no import
of the emulator; `tests/plugin/test_lazy_import.py` checks these match the emulator's.
"""

from __future__ import annotations

__all__ = ["DEFAULT_QUOTA", "QUOTA_TIERS"]

# The keys of `qstash_emulator.core.quotas.QUOTAS`, in the order the help text lists them.
QUOTA_TIERS: tuple[str, ...] = ("payg", "pro")
DEFAULT_QUOTA = "payg"
