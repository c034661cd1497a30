"""Thin aiohttp handlers: parse the request, call the engine, render QStash's response."""

__all__: list[str] = []
