"""Parsers: publish headers, header names, durations, retry-delay expressions, cron."""

__all__: list[str] = []
