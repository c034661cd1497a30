"""The transport-free core: clock, scheduler, state, engine, delivery, signing, ids, users."""

__all__: list[str] = []
