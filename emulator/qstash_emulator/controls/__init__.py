"""What a test or developer injects and observes: faults, rate limits, captures."""

__all__: list[str] = []
