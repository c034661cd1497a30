"""pytest11 entry point: fixtures and markers (filled in by the plugin issue)."""
