"""The local dashboard at /__dashboard, served by the emulator's own aiohttp app.

Server-rendered pages (Jinja2), a little plain JavaScript for live updates (server-sent events)
and actions:

- `pages.py`: the pages (messages, DLQ, schedules, queues and flow control, workflow runs, LLM
  calls, time); `views.py` reads what they show from the engine's state, `workflow_views.py`
  the workflow runs' steps and waiters.
- `actions.py`: POST actions, each the same engine call as the REST API's.
- `live.py`: the change counter and the event stream; `security.py`: local origins and the key.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2
from aiohttp import web

from . import access, actions, live, pages, routes
from .security import KEY, new_key
from .views import MessageIndex

__all__ = ["PREFIX", "setup"]

PREFIX = "/__dashboard"
_HERE = Path(__file__).parent


@functools.cache
def _templates() -> jinja2.Environment:
    # One environment for every emulator in the process: templates compile once, and a new
    # emulator (a test's fresh server) pays nothing for them.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_HERE / "templates")),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.do"],
    )


_GET = routes.compile_table(
    [
        ("", pages.home),
        ("/", pages.home),
        ("/messages", pages.messages),
        ("/messages/{messageId}", pages.message),
        ("/dlq", pages.dlq),
        ("/schedules", pages.schedules),
        ("/queues", pages.queues),
        ("/runs", pages.runs),
        ("/runs/{runId}", pages.run),
        ("/llm", pages.llm),
        ("/time", pages.time),
        ("/events", live.events),
        ("/static/{name}", routes.static_file),
    ]
)


def setup(app: web.Application) -> None:
    """Add the dashboard's routes, templates and live updates to the emulator's app."""
    app[KEY] = new_key()
    app[pages.INDEX] = MessageIndex(access.app_backend(app).engine)
    app[pages.TEMPLATES] = _templates()
    live.setup(app)
    app.router.add_get(PREFIX + "{tail:.*}", routes.dispatcher(_GET))
    app.router.add_post(PREFIX + "/api{tail:/.*}", routes.dispatcher(actions.TABLE))
