"""Where the dashboard reaches the emulator's state: the backend, as the REST handlers do.

Every read and action of the dashboard goes through these accessors (`backend(request)`).
"""

from __future__ import annotations

from aiohttp import web

from ..backend import Backend
from ..controls.captures import CaptureStore
from ..core.engine import Engine
from ..core.users import Users
from ..http.common import BACKEND, backend
from ..http.emulator_routes import CONTROL, EmulatorControl
from ..llm import LLMEngine
from ..resources.flow_control import FlowControl
from ..resources.queues import Queues
from ..resources.schedules import Schedules
from ..resources.url_groups import UrlGroups
from ..workflows import WorkflowRuns

__all__ = [
    "app_backend",
    "captures",
    "control",
    "engine",
    "flow_control",
    "llm",
    "queues",
    "schedules",
    "url_groups",
    "users",
    "workflows",
]


def engine(request: web.Request) -> Engine:
    """The engine: messages, logs, DLQ."""
    return backend(request).engine


def users(request: web.Request) -> Users:
    """The emulator's users."""
    return backend(request).users


def schedules(request: web.Request) -> Schedules:
    """Every user's schedules."""
    return backend(request).schedules


def queues(request: web.Request) -> Queues:
    """Every user's queues."""
    return backend(request).queues


def url_groups(request: web.Request) -> UrlGroups:
    """Every user's URL groups."""
    return backend(request).url_groups


def flow_control(request: web.Request) -> FlowControl:
    """Every user's flow-control keys."""
    return backend(request).flow_control


def llm(request: web.Request) -> LLMEngine:
    """The scripted LLM engine (its recorded calls)."""
    return backend(request).llm.llm


def captures(request: web.Request) -> CaptureStore:
    """The capture URLs' records."""
    return backend(request).captures


def control(request: web.Request) -> EmulatorControl | None:
    """The /__emulator routes' control object (time lock, request-log notes), when installed."""
    return request.app.get(CONTROL)


def app_backend(app: web.Application) -> Backend:
    """The backend of an app being set up (no request yet)."""
    return app[BACKEND]


def workflows(request: web.Request) -> WorkflowRuns:
    """Every user's workflow runs and their waiters."""
    return backend(request).workflows
