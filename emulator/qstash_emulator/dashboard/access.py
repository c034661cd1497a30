"""Where the dashboard reaches the emulator's state: the same objects the REST handlers use.

Every read and action of the dashboard goes through these accessors, so the dashboard follows the
backend wherever it is wired (one place to change when the wiring changes).
"""

from __future__ import annotations

from aiohttp import web

from ..core.engine import Engine
from ..core.users import Users
from ..http.common import ENGINE, USERS
from ..llm import LLMEngine
from ..llm.service import LLMService
from ..resources.flow_control import FlowControl
from ..resources.queues import Queues, queues_of
from ..resources.schedules import Schedules
from ..resources.url_groups import UrlGroups, url_groups_of


def engine(request: web.Request) -> Engine:
    return request.app[ENGINE]


def users(request: web.Request) -> Users:
    return request.app[USERS]


def schedules(request: web.Request) -> Schedules:
    return Schedules.of(engine(request))


def queues(request: web.Request) -> Queues:
    return queues_of(engine(request))


def url_groups(request: web.Request) -> UrlGroups:
    return url_groups_of(engine(request))


def flow_control(request: web.Request) -> FlowControl:
    return FlowControl.of(engine(request))


def llm(request: web.Request) -> LLMEngine:
    return LLMService.of(engine(request)).llm


def app_engine(app: web.Application) -> Engine:
    return app[ENGINE]
