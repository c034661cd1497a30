"""The dashboard's pages, server-rendered with Jinja2.

`?fragment=1` renders only the part the page's script swaps in on a live update.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from ..core.clock import ms
from ..core.errors import not_found
from ..core.users import User
from . import access, views, workflow_views
from .cron_words import describe
from .live import NOTIFIER
from .routes import asset_url
from .security import KEY, cookie_name, require_local, set_key_cookie

__all__ = ["INDEX", "NAV", "TEMPLATES", "USER_COOKIE", "current_user", "render"]

USER_COOKIE = "qstash_dashboard_user"
INDEX = web.AppKey("dashboard_index", views.MessageIndex)
TEMPLATES = web.AppKey("dashboard_templates", jinja2.Environment)
# (path, label) of the navigation, in order.
NAV = [
    ("messages", "Messages"),
    ("dlq", "DLQ"),
    ("schedules", "Schedules"),
    ("queues", "Queues & flow control"),
    ("runs", "Workflow runs"),
    ("llm", "LLM calls"),
    ("time", "Time"),
]


def current_user(request: web.Request) -> User:
    """The user the dashboard shows: `?user=` or the switcher's cookie, else the default."""
    users = access.users(request)
    name = request.query.get("user") or request.cookies.get(cookie_name(request, USER_COOKIE))
    if name:
        try:
            return users[name]
        except KeyError:
            pass
    return users.default


def render(
    request: web.Request, template: str, page: str, context: Mapping[str, Any]
) -> web.Response:
    """Render a page (or its fragment) with what every page shows; sets the key cookie."""
    require_local(request)
    eng = access.engine(request)
    now = eng.clock.now()
    fragment = request.query.get("fragment") == "1"
    base = {
        "layout": "_fragment.html" if fragment else "_page.html",
        "page": page,
        "nav": NAV,
        "user": current_user(request),
        "users": list(access.users(request)),
        "now": now,
        "now_ms": ms(now),
        "virtual": eng.clock.virtual,
        "dashboard_key": request.app[KEY],
        "version": request.app[NOTIFIER].version,  # the live stream's counter at render time
        "iso": views.iso,
        "ago": lambda t: views.relative(t, now),
        "body_text": views.body_text,
        "asset": lambda name: asset_url("/__dashboard", name),
    }
    response = aiohttp_jinja2.render_template(
        template, request, {**base, **context}, app_key=TEMPLATES
    )
    response.headers["Cache-Control"] = "no-store"
    if not fragment:
        set_key_cookie(request, response)
    return response


async def home(request: web.Request) -> web.Response:
    raise web.HTTPFound("/__dashboard/messages")


async def messages(request: web.Request) -> web.Response:
    eng, who = access.engine(request), current_user(request)
    query = views.MessageQuery.from_query(request.query)
    index = request.app[INDEX].read(who)
    result = views.message_page(index, query, eng.clock.now())
    return render(
        request,
        "messages.html",
        "messages",
        {"query": query, "result": result, "states": views.STATES},
    )


async def message(request: web.Request) -> web.Response:
    eng, who = access.engine(request), current_user(request)
    index = request.app[INDEX].read(who)
    message_id = request.match_info["messageId"]
    found = index.messages.get(message_id)
    if found is None:
        raise not_found(f"message {message_id} not found")
    callbacks = [index.messages[i] for i in index.callbacks.get(found.id, [])]
    now = eng.clock.now()
    return render(
        request,
        "message.html",
        "messages",
        {
            "m": found,
            "status": views.status(found, now),
            "events": index.events.get(found.id, []),
            "attempts": views.attempts(eng, found),
            "headers": views.message_headers(found),
            "body": views.message_body(found),
            "callbacks": [(c, views.status(c, now)) for c in callbacks],
            "source": views.source_id(found) if found.kind != "message" else None,
            "run": access.workflows(request).run_of(found),
            "dlq_id": next(
                (e.dlq_id for e in eng.state(who).dlq.values() if e.message is found), None
            ),
        },
    )


async def dlq(request: web.Request) -> web.Response:
    eng, who = access.engine(request), current_user(request)
    entries = eng.dlq_entries(who)
    page = views.page_number(request.query)
    pages = max(1, -(-len(entries) // views.PAGE_SIZE))
    shown = entries[page * views.PAGE_SIZE : (page + 1) * views.PAGE_SIZE]
    return render(
        request,
        "dlq.html",
        "dlq",
        {"entries": shown, "total": len(entries), "page": page, "pages": pages},
    )


async def schedules(request: web.Request) -> web.Response:
    eng, who = access.engine(request), current_user(request)
    now = eng.clock.now()
    rows = []
    for schedule in access.schedules(request).list(who):
        upcoming: list[float] = []
        t = now
        for _ in range(5):
            t = schedule.cron.next_after(t)
            upcoming.append(t)
        rows.append(
            {
                "s": schedule,
                "words": describe(schedule.cron.expr),
                "next": upcoming,
                "states": schedule.last_states(),
            }
        )
    return render(request, "schedules.html", "schedules", {"rows": rows})


async def queues(request: web.Request) -> web.Response:
    who = current_user(request)
    qs = access.queues(request)
    return render(
        request,
        "queues.html",
        "queues",
        {
            "queues": [(q, qs.lag(who, q)) for q in qs.all(who)],
            "groups": access.url_groups(request).all(who),
            "keys": access.flow_control(request).list(who),
        },
    )


async def runs(request: web.Request) -> web.Response:
    who = current_user(request)
    workflows = access.workflows(request)
    query = workflow_views.RunQuery.from_query(request.query)
    result = workflow_views.run_page(workflows.runs(who), query, workflows.events)
    return render(
        request,
        "runs.html",
        "runs",
        {
            "query": query,
            "result": result,
            "states": workflow_views.RUN_STATES,
            "badges": {k: workflow_views.run_badge(k)[0] for k, _ in workflow_views.RUN_STATES},
        },
    )


async def run(request: web.Request) -> web.Response:
    eng, who = access.engine(request), current_user(request)
    workflows = access.workflows(request)
    found = workflows.get(who, request.match_info["runId"])  # 404 when there is none
    index = request.app[INDEX].read(who)
    badge, label = workflow_views.run_badge(found.state)
    return render(
        request,
        "run.html",
        "runs",
        {
            "r": found,
            "badge": badge,
            "label": label,
            "steps": workflow_views.timeline(found, eng, index, workflows.events),
            "waiters": workflow_views.run_waiters(found, workflows.events),
            "span": views.span,
        },
    )


async def llm(request: web.Request) -> web.Response:
    calls = list(enumerate(access.llm(request).calls))[::-1][:200]  # newest first
    return render(request, "llm.html", "llm", {"calls": [_llm_row(n, c) for n, c in calls]})


def _llm_row(number: int, call: Any) -> dict[str, Any]:
    body = call.body if isinstance(call.body, Mapping) else {}
    prompt = ""
    messages = body.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[-1], Mapping):
        content = messages[-1].get("content")
        prompt = content if isinstance(content, str) else str(content)
    elif isinstance(body.get("prompt"), str):
        prompt = body["prompt"]
    answer = ""
    out = call.outcome.body
    choices = out.get("choices") if isinstance(out, Mapping) else None
    if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
        first = choices[0]
        msg = first.get("message")
        answer = (
            str(msg.get("content") or msg.get("tool_calls") or "")
            if isinstance(msg, Mapping)
            else str(first.get("text", ""))
        )
    elif isinstance(out, Mapping) and "error" in out:
        error = out["error"]
        answer = str(error.get("message") if isinstance(error, Mapping) else error)
    return {
        "number": number,  # stable across live updates (keeps a row's details open)
        "call": call,
        "model": body.get("model", ""),
        "rule": _rule_label(call.rule),
        "prompt": prompt,
        "answer": answer,
        "request": views.body_text(_json(call.body)),
        "response": views.body_text(_json(call.outcome.body)),
    }


def _rule_label(rule: Any) -> str:
    if rule is None:
        return "default answer"
    if rule.name:
        return str(rule.name)
    if rule.match.contains:
        return f"rule: contains {rule.match.contains!r}"
    if rule.match.regex is not None:
        return f"rule: matches /{rule.match.regex.pattern}/"
    return "script rule"


def _json(value: Any) -> bytes:
    import json

    try:
        return json.dumps(value).encode()
    except (TypeError, ValueError):
        return repr(value).encode()


async def time(request: web.Request) -> web.Response:
    eng = access.engine(request)
    due = eng.scheduler.next_due()
    return render(request, "time.html", "time", {"next_due": due})
