"""pytest plugin for the QStash emulator."""
