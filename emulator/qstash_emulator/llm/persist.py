"""The `/queue` mirror's jobs in a persistent store (`Store.register`), and back at startup.

A job's `run` is a closure over its decoded request; the store keeps the request's data (JSON
body or form fields, uploaded files in base64) and the restore rebuilds the closure from it.
Finished jobs keep their outcome for polling; unfinished ones wait for a worker again.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import TYPE_CHECKING, Any

from ..store import codec
from .engine import LLMOutcome
from .jobs import JOB, Job, LLMQueue
from .requests import LLMRequest, run_request

if TYPE_CHECKING:
    from ..backend import Backend
    from ..store.base import Store

__all__ = ["install"]


def install(queue: LLMQueue, store: Store) -> None:
    """Register the jobs' kind with the store (a no-op for the memory store)."""

    def encode(job: Job) -> tuple[Any, bytes | None]:
        return _job_json(job), None

    def restore(backend: Backend, user: str, key: str, data: Any, body: bytes | None) -> None:
        request = _load_request(data["request"])
        queue.restore(
            Job(
                id=key,
                user=user,
                path=data["path"],
                run=partial(run_request, backend.llm.llm, request),
                created_at=data["created_at"],
                serial=data["serial"],
                status=data["status"],
                started_at=data["started_at"],
                completed_at=data["completed_at"],
                outcome=None if data["outcome"] is None else LLMOutcome(**data["outcome"]),
                request=request,
            )
        )

    store.register(JOB, encode, restore)


def _job_json(job: Job) -> dict[str, Any]:
    request = job.request
    assert request is not None  # only jobs with their request are saved (LLMQueue._saved)
    return {
        "path": job.path,
        "created_at": job.created_at,
        "serial": job.serial,
        "status": job.status,
        "started_at": job.started_at,
        "completed_at": job.completed_at,
        "outcome": None if job.outcome is None else dataclasses.asdict(job.outcome),
        "request": {
            "endpoint": request.endpoint,
            "body": request.body,
            "files": {k: [codec.b64e(data), name] for k, (data, name) in request.files.items()},
            "provider": request.provider,
            "image_base": request.image_base,
            "model_id": request.model_id,
        },
    }


def _load_request(data: dict[str, Any]) -> LLMRequest:
    return LLMRequest(
        endpoint=data["endpoint"],
        body=data["body"],
        files={k: (codec.b64d(b64), name) for k, (b64, name) in data["files"].items()},
        provider=data["provider"],
        image_base=data["image_base"],
        model_id=data["model_id"],
    )
