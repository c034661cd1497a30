"""QStash resources built on the core: queues, URL groups, schedules, flow control, destinations."""

__all__: list[str] = []
