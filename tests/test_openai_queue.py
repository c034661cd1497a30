"""The /queue mirror: same request bodies and responses as the standard endpoints, through a
bounded FIFO worker queue (concurrency, start rate) on the emulator's clock, and the
submit-and-poll API (`Prefer: respond-async`, `GET /queue/jobs/{id}[/result]`)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from helpers import requests_to
from openai import AsyncOpenAI, OpenAI
from pytest_httpserver import HTTPServer
from qstash import QStash
from qstash.chat import custom
from qstash_emulator import Emulator
from qstash_emulator.llm import LLAMA_3_8B

ASYNC = {"Prefer": "respond-async"}


def chat(text: str = "What is the capital of Turkey?", **extra: Any) -> dict[str, Any]:
    return {"model": LLAMA_3_8B, "messages": [{"role": "user", "content": text}], **extra}


def auth(emu: Emulator, token: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token or emu.token}"}


def submit(emu: Emulator, body: Any = None, path: str = "/queue/chat/completions") -> Any:
    return httpx.post(emu.url + path, json=body or chat(), headers={**auth(emu), **ASYNC})


def job(emu: Emulator, job_id: str, tail: str = "", token: str | None = None) -> Any:
    return httpx.get(f"{emu.url}/queue/jobs/{job_id}{tail}", headers=auth(emu, token))


async def test_the_seed_async_example_works_as_written(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", emu.token)  # the seed's client reads its key from here
    for topic in ("solar", "wind turbines", "hydrogen"):
        emu.llm.reply(contains=topic, content=f"About {topic}.")
    client = AsyncOpenAI(base_url=emu.url + "/queue")
    prompts = [
        "Summarize the benefits of solar energy.",
        "Explain how wind turbines generate electricity.",
        "Describe the future of hydrogen fuel cells.",
    ]

    async def process_prompt(prompt: str) -> str | None:
        response = await client.chat.completions.create(
            model="Llama-3.3-70B-Instruct",
            messages=[{"role": "user", "content": prompt}],
            max_tokens=500,
        )
        return response.choices[0].message.content

    results = await asyncio.gather(*(process_prompt(p) for p in prompts))
    assert results == ["About solar.", "About wind turbines.", "About hydrogen."]
    assert {c.provider for c in emu.llm.calls} == {"custom"}
    await client.close()


def test_the_seed_sync_examples_for_other_endpoints(emu: Emulator) -> None:
    client = OpenAI(base_url=emu.url + "/queue", api_key=emu.token, max_retries=0)
    response = client.embeddings.create(
        model="text-embedding-bge-m3", input="The benefits of renewable energy in Europe"
    )
    assert len(response.data[0].embedding) == 1536
    emu.llm.reply(endpoint="transcription", content="Minutes of the meeting.")
    audio_file = io.BytesIO(b"\xff\xfb" + b"\x00" * 32000)
    audio_file.name = "meeting_recording.mp3"
    transcript = client.audio.transcriptions.create(model="whisper-large-v3", file=audio_file)
    assert transcript.text == "Minutes of the meeting."
    result = client.images.generate(
        model="gpt-image-1", prompt="A futuristic data center powered by renewable energy"
    )
    assert result.data is not None and result.data[0].b64_json
    assert next(m.id for m in client.models.list()) == LLAMA_3_8B
    assert [c.endpoint for c in emu.llm.calls] == ["embeddings", "transcription", "image", "models"]


def test_a_queued_request_gets_the_standard_endpoints_response(emu: Emulator) -> None:
    emu.llm.reply(content="Ankara.")
    standard = httpx.post(emu.url + "/v2/chat/completions", json=chat(n=2), headers=auth(emu))
    for path in ("/queue/chat/completions", "/queue/v1/chat/completions"):
        queued = httpx.post(emu.url + path, json=chat(n=2), headers=auth(emu))
        assert queued.status_code == standard.status_code == 200
        mine, theirs = queued.json(), standard.json()
        assert mine["id"] != theirs["id"]  # a new completion...
        for key in ("object", "created", "model", "choices", "usage", "system_fingerprint"):
            assert mine[key] == theirs[key], key  # ...answered exactly alike
    streamed = httpx.post(
        emu.url + "/queue/chat/completions", json=chat(stream=True), headers=auth(emu)
    )
    assert streamed.headers["Content-Type"].startswith("text/event-stream")
    assert streamed.text.endswith("data: [DONE]\n\n")
    invalid = httpx.post(emu.url + "/queue/chat/completions", json=chat(n=0), headers=auth(emu))
    assert invalid.status_code == 400 and invalid.json()["error"]["param"] == "n"


def test_submit_and_poll_runs_jobs_in_order_on_the_clock(emu: Emulator) -> None:
    emu.llm_queue.configure(concurrency=1)
    for answer in ("first", "second", "third"):
        emu.llm.reply(contains=answer, content=f"{answer} done", latency=10, times=1)
    start = emu.now
    submitted = [submit(emu, chat(f"the {n} job")) for n in ("first", "second", "third")]
    assert [s.status_code for s in submitted] == [202, 202, 202]
    ids = [s.json()["id"] for s in submitted]
    assert submitted[0].headers["Location"] == f"/queue/jobs/{ids[0]}"
    assert submitted[0].headers["Preference-Applied"] == "respond-async"

    def states() -> list[tuple[str, int | None]]:
        return [(j["status"], j["position"]) for j in (job(emu, i).json() for i in ids)]

    assert states() == [("in_progress", None), ("queued", 0), ("queued", 1)]
    pending = job(emu, ids[1], "/result")
    assert pending.status_code == 202 and pending.json()["status"] == "queued"
    emu.advance(10)
    assert states() == [("completed", None), ("in_progress", None), ("queued", 0)]
    done = job(emu, ids[0]).json()
    assert done["started_at"] == int(start) and done["completed_at"] == int(start) + 10
    assert done["result"]["status"] == 200
    assert done["result"]["body"]["choices"][0]["message"]["content"] == "first done"
    emu.advance(20)
    assert [s for s, _ in states()] == ["completed"] * 3
    result = job(emu, ids[2], "/result")
    assert result.status_code == 200
    assert result.json()["object"] == "chat.completion"
    assert result.json()["choices"][0]["message"]["content"] == "third done"
    listed = httpx.get(emu.url + "/queue/jobs", headers=auth(emu)).json()
    assert [j["id"] for j in listed["data"]] == ids


def test_wait_false_also_submits_without_waiting(emu: Emulator) -> None:
    answer = httpx.post(
        emu.url + "/queue/embeddings?wait=false",
        json={"model": "m", "input": "x"},
        headers=auth(emu),
    )
    assert answer.status_code == 202
    emu.settle()
    polled = job(emu, answer.json()["id"]).json()
    assert polled["status"] == "completed" and polled["path"] == "/queue/embeddings"


def test_the_start_rate_spreads_jobs_over_the_clock(emu: Emulator) -> None:
    emu.llm_queue.configure(concurrency=10, rate=2)
    start = emu.now
    ids = [submit(emu).json()["id"] for _ in range(5)]
    emu.advance(2)
    started = [job(emu, i).json()["started_at"] - int(start) for i in ids]
    assert started == [0, 0, 1, 1, 2]


def test_failed_jobs_keep_the_error_and_cancelled_jobs_never_run(emu: Emulator) -> None:
    emu.llm_queue.configure(concurrency=1)
    emu.llm.reply(latency=10, times=1)
    running, waiting = submit(emu).json()["id"], submit(emu).json()["id"]
    cancel = httpx.delete(f"{emu.url}/queue/jobs/{waiting}", headers=auth(emu))
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"
    refused = httpx.delete(f"{emu.url}/queue/jobs/{running}", headers=auth(emu))
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "job_not_cancellable"
    assert job(emu, waiting, "/result").status_code == 409
    bad = submit(emu, chat(temperature=5)).json()["id"]
    emu.advance(10)
    failed = job(emu, bad).json()
    assert failed["status"] == "failed" and failed["result"]["status"] == 400
    assert job(emu, bad, "/result").json()["error"]["param"] == "temperature"
    assert len(emu.llm.calls) == 2  # the cancelled job never reached the model


def test_a_full_queue_answers_429(emu: Emulator) -> None:
    emu.llm_queue.configure(concurrency=1, max_size=1)
    emu.llm.reply(latency=10)
    statuses = [submit(emu).status_code for _ in range(2)]
    full = submit(emu)
    assert statuses == [202, 202]
    assert full.status_code == 429 and full.json()["error"]["code"] == "queue_full"


def test_jobs_belong_to_their_submitter_and_reset_clears_them(emu: Emulator) -> None:
    job_id = submit(emu).json()["id"]
    other = emu.users["testUser1"].token
    assert job(emu, job_id).status_code == 200
    assert job(emu, job_id, token=other).status_code == 404
    assert httpx.get(emu.url + "/queue/jobs", headers=auth(emu, other)).json()["data"] == []
    emu.llm_queue.configure(concurrency=3)
    emu.reset()
    gone = job(emu, job_id)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "job_not_found"
    assert emu.llm_queue.config.concurrency == 4


def test_queue_errors_are_openai_shaped(emu: Emulator) -> None:
    unknown = httpx.post(emu.url + "/queue/unknown", json={}, headers=auth(emu))
    assert unknown.status_code == 404 and "Invalid URL" in unknown.json()["error"]["message"]
    no_token = httpx.post(emu.url + "/queue/chat/completions", json=chat())
    assert no_token.status_code == 401 and set(no_token.json()["error"]) == {
        "message",
        "type",
        "param",
        "code",
    }
    broken = httpx.post(
        emu.url + "/queue/chat/completions", content=b"{", headers={**auth(emu), **ASYNC}
    )
    assert broken.status_code == 400 and emu.llm_queue.jobs == {}


async def test_waiting_callers_are_served_one_worker_at_a_time() -> None:
    async with Emulator(auto_advance=True) as emu:
        emu.llm_queue.configure(concurrency=1)
        emu.llm.reply(latency=5)
        start = emu.now
        async with httpx.AsyncClient(headers=auth(emu)) as http:
            answers = await asyncio.gather(
                *(http.post(emu.url + "/queue/chat/completions", json=chat()) for _ in range(2))
            )
        assert [a.status_code for a in answers] == [200, 200]
        jobs = list(emu.llm_queue.jobs.values())
        assert [(j.started_at, j.completed_at) for j in jobs] == [
            (start, start + 5),
            (start + 5, start + 10),
        ]
        assert emu.now == start + 10


def test_the_queue_as_a_custom_provider_for_published_requests(
    emu: Emulator, httpserver: HTTPServer, target: Callable[..., str]
) -> None:
    """custom(base_url=<emulator>/queue) sends to /queue/v1/chat/completions; the emulator's
    own delivery is answered without stalling the virtual clock on the scripted latency."""
    emu.llm.reply(content="Queued and delivered.", latency=5)
    cb = target("/cb")
    client = QStash(emu.token, base_url=emu.url, retry=False)
    api: Any = {"name": "llm", "provider": custom(f"{emu.url}/queue", emu.token)}
    client.message.publish_json(api=api, body=chat(), callback=cb)
    emu.settle()
    [req] = requests_to(httpserver, "/cb")
    body = json.loads(req.get_data())
    assert body["status"] == 200 and body["url"] == f"{emu.url}/queue/v1/chat/completions"
    answer = json.loads(base64.b64decode(body["body"]))
    assert answer["choices"][0]["message"]["content"] == "Queued and delivered."
