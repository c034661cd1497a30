"""The local dashboard at /__dashboard, served by the emulator's own aiohttp app.

Server-rendered pages (Jinja2), a little plain JavaScript for live updates (server-sent events)
and actions:

- `pages.py`: the pages (messages, DLQ, schedules, queues and flow control, LLM calls, time, and
  a placeholder for workflow runs); `views.py` reads what they show from the engine's state.
- `actions.py`: POST actions, each the same engine call as the REST API's.
- `live.py`: the change counter and the event stream; `security.py`: local origins and the key.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from . import access, actions, live, pages
from .security import KEY, new_key
from .views import MessageIndex

__all__ = ["PREFIX", "setup"]

PREFIX = "/__dashboard"
_HERE = Path(__file__).parent


def setup(app: web.Application) -> None:
    """Add the dashboard's routes, templates and live updates to the emulator's app."""
    app[KEY] = new_key()
    app[pages.INDEX] = MessageIndex(access.app_backend(app).engine)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(_HERE / "templates")),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.do"],
    )
    live.setup(app)
    router = app.router
    router.add_get(PREFIX, pages.home)
    router.add_get(PREFIX + "/", pages.home)
    router.add_get(PREFIX + "/messages", pages.messages)
    router.add_get(PREFIX + "/messages/{messageId}", pages.message)
    router.add_get(PREFIX + "/dlq", pages.dlq)
    router.add_get(PREFIX + "/schedules", pages.schedules)
    router.add_get(PREFIX + "/queues", pages.queues)
    router.add_get(PREFIX + "/runs", pages.runs)
    router.add_get(PREFIX + "/llm", pages.llm)
    router.add_get(PREFIX + "/time", pages.time)
    router.add_get(PREFIX + "/events", live.events)
    router.add_static(
        PREFIX + "/static", _HERE / "static", append_version=True, name="dashboard-static"
    )
    actions.setup(app, PREFIX)
