"""The standalone dev server's extras: the request log, seeded state from a config file and the
client behind the time-control CLI verbs."""
