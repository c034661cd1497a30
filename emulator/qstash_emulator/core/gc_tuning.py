"""The garbage collector's settings while the emulator does bulk work.

A delivery allocates a few dozen containers (message, log entries, task, headers), so with
CPython's default young generation (700 objects) a young collection runs every few deliveries
and an older one, rescanning every held message and log entry, every few hundred: about a tenth
of the CPU per delivery (benchmarks/README.md). A larger young generation collects as surely,
far less often.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

__all__ = ["YOUNG", "replaying", "tune_for_server"]

YOUNG = 20_000  # objects in the young generation (CPython's default is 700)

_depth = 0  # replays running (advance calls may nest, or overlap on emulators' threads)
_saved: tuple[int, ...] = ()
_lock = threading.Lock()


def tune_for_server() -> None:
    """For the standalone server, once it is set up: for as long as the process lives.

    What is loaded by then (modules, the app) lives as long as the process, so it is moved out
    of the collector's sight too.
    """
    gc.freeze()
    gc.set_threshold(YOUNG)


@contextlib.contextmanager
def replaying() -> Iterator[None]:
    """A larger young generation while virtual time is replayed (an advance), then as before.

    The emulator may live in an app's test process: the setting is the app's again afterwards.
    """
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            if _saved[0] < YOUNG:
                gc.set_threshold(YOUNG, *_saved[1:])
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.set_threshold(*_saved)
