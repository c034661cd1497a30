"""The queued mirror of the OpenAI-compatible endpoints.

`/queue/chat/completions`, `/queue/completions`, `/queue/embeddings`, `/queue/audio/transcriptions`,
`/queue/audio/translations`, `/queue/images/generations`, `/queue/images/edits` and
`GET /queue/models` (also under `/queue/v1/...` and `/queue/v2/...`).

The request body is the standard endpoint's; the request waits in the worker queue
(llm/jobs.py) and the caller gets the standard endpoint's response. Submit without waiting
with `Prefer: respond-async` (or `?wait=false`): 202 with the job, then poll:

    GET    /queue/jobs               the caller's jobs
    GET    /queue/jobs/{id}          status: queued | in_progress | completed | failed | cancelled
    GET    /queue/jobs/{id}/result   the standard endpoint's response once finished (202 before)
    DELETE /queue/jobs/{id}          cancel a job still queued
"""

from __future__ import annotations

from functools import partial

from aiohttp import web

from ..llm.errors import OpenAIError
from ..llm.jobs import CANCELLED, COMPLETED, FAILED, Job
from ..llm.requests import POST_ENDPOINTS, run_request
from .common import Handler, user
from .openai import (
    CUSTOM,
    add_error_prefixes,
    answer,
    decode,
    models_handler,
    not_found,
    openai_error,
    openai_json,
    own_delivery,
    render,
    service,
)

__all__ = ["setup"]

_PREFIX = "/queue"
_JOBS = _PREFIX + "/jobs"


def _wants_async(request: web.Request) -> bool:
    """`Prefer: respond-async` (RFC 7240) or `?wait=false`: answer 202 at once."""
    prefer = ",".join(request.headers.getall("Prefer", []))
    tokens = {part.split("=", 1)[0].strip().lower() for part in prefer.replace(";", ",").split(",")}
    wait = request.query.get("wait", "").strip().lower()
    return "respond-async" in tokens or wait in ("false", "0", "no")


def _job_location(job: Job) -> str:
    return f"{_JOBS}/{job.id}"


def _queue_handler(endpoint: str) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        svc = service(request)
        try:
            req = await decode(request, endpoint, CUSTOM)
            if svc.clock.virtual and own_delivery(request) and not _wants_async(request):
                # This emulator's own delivery runs inside a scheduler step and cannot wait for
                # the queue's clock: it is answered at once, as by the standard endpoint.
                return await answer(request, req, chat_limits=False)
            job = svc.queue.submit(
                user(request).name, request.path, partial(run_request, svc.llm, req), req
            )
        except OpenAIError as exc:
            return openai_error(exc)
        if _wants_async(request):
            headers = {"Location": _job_location(job), "Preference-Applied": "respond-async"}
            return openai_json(svc.queue.json(job), 202, headers)
        await svc.queue.wait(job)
        return await _result_of(request, job)

    return handle


async def _result_of(request: web.Request, job: Job) -> web.StreamResponse:
    """The job's answer as the standard endpoint gives it, or where the job stands."""
    queue = service(request).queue
    if job.status in (COMPLETED, FAILED) and job.outcome is not None:
        return await render(request, job.outcome)
    if job.status == CANCELLED:
        return openai_error(
            OpenAIError(f"Job '{job.id}' was cancelled.", status=409, code="job_cancelled")
        )
    headers = {"Location": _job_location(job), "Retry-After": "1"}
    return openai_json(queue.json(job), 202, headers)


async def _list_jobs(request: web.Request) -> web.Response:
    queue = service(request).queue
    return openai_json(
        {"object": "list", "data": [queue.json(j) for j in queue.list(user(request).name)]}
    )


async def _get_job(request: web.Request) -> web.Response:
    queue = service(request).queue
    try:
        job = queue.get(user(request).name, request.match_info["job"])
    except OpenAIError as exc:
        return openai_error(exc)
    return openai_json(queue.json(job))


async def _job_result(request: web.Request) -> web.StreamResponse:
    try:
        job = service(request).queue.get(user(request).name, request.match_info["job"])
    except OpenAIError as exc:
        return openai_error(exc)
    return await _result_of(request, job)


async def _cancel_job(request: web.Request) -> web.Response:
    queue = service(request).queue
    try:
        job = queue.cancel(user(request).name, request.match_info["job"])
    except OpenAIError as exc:
        return openai_error(exc)
    return openai_json(queue.json(job))


def setup(app: web.Application) -> None:
    """Add the /queue routes (and their /queue/v1, /queue/v2 forms) and the jobs API to `app`."""
    app.router.add_get(_JOBS, _list_jobs)
    app.router.add_get(_JOBS + "/{job}", _get_job)
    app.router.add_get(_JOBS + "/{job}/result", _job_result)
    app.router.add_delete(_JOBS + "/{job}", _cancel_job)
    # The seed's paths (/queue/chat/completions), and the same under /queue/v1 and /queue/v2
    # for clients whose base URL keeps the version.
    for prefix in (_PREFIX, _PREFIX + "/v1", _PREFIX + "/v2"):
        for tail, endpoint in POST_ENDPOINTS.items():
            app.router.add_post(f"{prefix}/{tail}", _queue_handler(endpoint))
        # Listing models needs no worker: it is answered at once.
        app.router.add_get(f"{prefix}/models", models_handler(CUSTOM))
        app.router.add_get(prefix + "/models/{model:.+}", models_handler(CUSTOM))
    app.router.add_route("*", _PREFIX + "/{tail:.*}", not_found)
    add_error_prefixes(app, _PREFIX + "/")
