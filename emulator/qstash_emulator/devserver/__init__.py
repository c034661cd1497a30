"""The standalone dev server's extras.

The request log, seeded state from a config file, and the client behind the CLI verbs.
"""

__all__: list[str] = []
