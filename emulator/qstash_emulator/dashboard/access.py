"""Where the dashboard reaches the emulator's state: the backend, as the REST handlers do
(`backend(request)`). Every read and action of the dashboard goes through these accessors."""

from __future__ import annotations

from aiohttp import web

from ..backend import Backend
from ..controls.captures import CaptureStore
from ..core.engine import Engine
from ..core.users import Users
from ..http.common import BACKEND, backend
from ..llm import LLMEngine
from ..resources.flow_control import FlowControl
from ..resources.queues import Queues
from ..resources.schedules import Schedules
from ..resources.url_groups import UrlGroups


def engine(request: web.Request) -> Engine:
    return backend(request).engine


def users(request: web.Request) -> Users:
    return backend(request).users


def schedules(request: web.Request) -> Schedules:
    return backend(request).schedules


def queues(request: web.Request) -> Queues:
    return backend(request).queues


def url_groups(request: web.Request) -> UrlGroups:
    return backend(request).url_groups


def flow_control(request: web.Request) -> FlowControl:
    return backend(request).flow_control


def llm(request: web.Request) -> LLMEngine:
    return backend(request).llm.llm


def captures(request: web.Request) -> CaptureStore:
    return backend(request).captures


def app_backend(app: web.Application) -> Backend:
    return app[BACKEND]
