"""QStash resources built on the core: queues, URL groups, schedules, flow control, destinations."""
