"""The official `openai` client, unchanged but for `base_url` and `api_key` (the QStash token):
sync, async and streaming, against /llm/v1 (Upstash's chat API) and /v1 (a custom provider)."""

from __future__ import annotations

import base64
import io
import json
import struct
import warnings
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI, OpenAI
from qstash_emulator import Emulator
from qstash_emulator.llm import LLAMA_3_8B, MISTRAL_7B, LLMErrorSpec, make_png, png_size

QUESTION: Any = [{"role": "user", "content": "What is the capital of Turkey?"}]


@pytest.fixture
def llm(emu: Emulator) -> OpenAI:
    return OpenAI(base_url=emu.url + "/llm/v1", api_key=emu.token, max_retries=0)


@pytest.fixture
def v1(emu: Emulator) -> OpenAI:
    return OpenAI(base_url=emu.url + "/v1", api_key=emu.token, max_retries=0)


def test_the_seed_example_works_as_written(emu: Emulator, llm: OpenAI) -> None:
    emu.llm.reply(contains="OpenAI client", content="Received.")
    completion = llm.chat.completions.create(
        messages=[{"role": "user", "content": "Test message from the OpenAI client"}],
        model="meta-llama/Meta-Llama-3-8B-Instruct",
    )
    assert completion.object == "chat.completion"
    assert completion.model == LLAMA_3_8B
    assert completion.choices[0].message.content == "Received."
    assert completion.choices[0].message.role == "assistant"
    assert completion.created == int(emu.now)
    assert completion.usage is not None and completion.usage.completion_tokens == 2


def test_sync_stream_yields_chunks_with_role_first(emu: Emulator, llm: OpenAI) -> None:
    emu.llm.reply(content="Ankara is the capital of Turkey.")
    chunks = list(llm.chat.completions.create(model=MISTRAL_7B, messages=QUESTION, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.role is None for c in chunks[1:])
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "Ankara is the capital of Turkey."
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert len({c.id for c in chunks}) == 1


async def test_async_client_create_and_stream(emu: Emulator) -> None:
    emu.llm.reply(content="Ankara.")
    client = AsyncOpenAI(base_url=emu.url + "/llm/v1", api_key=emu.token, max_retries=0)
    completion = await client.chat.completions.create(model=LLAMA_3_8B, messages=QUESTION)
    assert completion.choices[0].message.content == "Ankara."
    stream = await client.chat.completions.create(
        model=LLAMA_3_8B,
        messages=QUESTION,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Ankara."
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3  # Llama 3: "Ank", "ara", "."
    await client.close()


def test_n_max_tokens_stop_and_logprobs(emu: Emulator, llm: OpenAI) -> None:
    emu.llm.reply(content="Ankara is the capital. It is in Anatolia.")
    several = llm.chat.completions.create(model=LLAMA_3_8B, messages=QUESTION, n=2)
    assert [c.index for c in several.choices] == [0, 1]
    cut = llm.chat.completions.create(model=LLAMA_3_8B, messages=QUESTION, max_tokens=3)
    # Llama 3's own tokens: "Ank", "ara", " is".
    assert cut.choices[0].message.content == "Ankara is"
    assert cut.usage is not None and cut.usage.completion_tokens == 3
    assert cut.choices[0].finish_reason == "length"
    stopped = llm.chat.completions.create(model=LLAMA_3_8B, messages=QUESTION, stop=". It")
    assert stopped.choices[0].message.content == "Ankara is the capital"
    probs = llm.chat.completions.create(
        model=LLAMA_3_8B, messages=QUESTION, logprobs=True, top_logprobs=3, max_tokens=2
    )
    logprobs = probs.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    # Logprobs come per piece of the emulator's own split ("Ank" + "ara" is one piece).
    assert [t.token for t in logprobs.content] == ["Ankara"]
    assert all(len(t.top_logprobs) == 3 for t in logprobs.content)


def test_json_mode_and_seed_through_the_client(v1: OpenAI) -> None:
    def ask(seed: int) -> str:
        res = v1.chat.completions.create(
            model="gpt-4o-mini",
            messages=QUESTION,
            response_format={"type": "json_object"},
            seed=seed,
        )
        return str(res.choices[0].message.content)

    assert isinstance(json.loads(ask(1)), dict)
    assert ask(1) == ask(1) != ask(2)


def test_errors_raise_the_clients_typed_exceptions(emu: Emulator, llm: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        llm.chat.completions.create(model=LLAMA_3_8B, messages=[])
    assert isinstance(bad.value.body, dict) and bad.value.body["param"] == "messages"
    with pytest.raises(openai.NotFoundError):
        llm.chat.completions.create(model="gpt-4o", messages=QUESTION)
    with pytest.raises(openai.AuthenticationError):
        OpenAI(base_url=emu.url + "/llm/v1", api_key="wrong", max_retries=0).models.list()
    emu.llm.reply(error=LLMErrorSpec.rate_limited(reset_requests="2s"), times=1)
    with pytest.raises(openai.RateLimitError) as limited:
        llm.chat.completions.create(model=LLAMA_3_8B, messages=QUESTION)
    assert limited.value.response.headers["x-ratelimit-reset-requests"] == "2s"
    emu.limits.configure(chat_requests=0)
    with pytest.raises(openai.RateLimitError) as configured:
        llm.chat.completions.create(model=LLAMA_3_8B, messages=QUESTION)
    assert configured.value.response.headers["x-ratelimit-limit-requests"] == "0"


def test_models_list_and_retrieve(llm: OpenAI) -> None:
    ids = [m.id for m in llm.models.list()]
    assert ids[:2] == [LLAMA_3_8B, MISTRAL_7B]
    assert llm.models.retrieve(LLAMA_3_8B).owned_by == "upstash"


def test_legacy_completion_and_embeddings(v1: OpenAI) -> None:
    completion = v1.completions.create(
        model="gpt-3.5-turbo-instruct", prompt="Say hi", max_tokens=4
    )
    assert completion.object == "text_completion" and completion.usage is not None
    assert completion.usage.completion_tokens == 4
    streamed = list(v1.completions.create(model="m", prompt="Say hi", max_tokens=3, stream=True))
    assert "".join(c.choices[0].text for c in streamed if c.choices)
    embedded = v1.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert len(embedded.data) == 2 and len(embedded.data[0].embedding) == 1536
    again = v1.embeddings.create(model="text-embedding-3-small", input="a")
    assert again.data[0].embedding == embedded.data[0].embedding


def _wav(seconds: float) -> bytes:
    frames = int(8000 * seconds)
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 8000, 1, 8)
    header = b"RIFF" + struct.pack("<I", 36 + frames) + b"WAVEfmt " + struct.pack("<I", 16)
    return header + fmt + b"data" + struct.pack("<I", frames) + b"\x80" * frames


def test_audio_through_the_client(emu: Emulator, v1: OpenAI) -> None:
    emu.llm.reply(endpoint=["transcription", "translation"], content="Good morning.")
    audio = ("meeting.wav", io.BytesIO(_wav(3.0)), "audio/wav")
    transcript = v1.audio.transcriptions.create(model="whisper-1", file=audio)
    assert transcript.text == "Good morning."
    audio = ("meeting.wav", io.BytesIO(_wav(3.0)), "audio/wav")
    srt = v1.audio.transcriptions.create(model="whisper-1", file=audio, response_format="srt")
    assert str(srt).startswith("1\n00:00:00,000 --> ")
    audio = ("meeting.wav", io.BytesIO(_wav(3.0)), "audio/wav")
    with warnings.catch_warnings():  # newer clients mark translations deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        translated = v1.audio.translations.create(model="whisper-1", file=audio)
    assert translated.text == "Good morning."
    assert [c.endpoint for c in emu.llm.calls] == ["transcription", "transcription", "translation"]


def test_images_through_the_client(emu: Emulator, v1: OpenAI) -> None:
    import httpx

    generated = v1.images.generate(model="dall-e-2", prompt="a lighthouse", size="512x512")
    assert generated.data is not None and generated.data[0].url is not None
    assert png_size(httpx.get(generated.data[0].url).content) == (512, 512)
    b64 = v1.images.generate(prompt="a lighthouse", size="256x256", response_format="b64_json")
    assert b64.data is not None and b64.data[0].b64_json is not None
    assert png_size(base64.b64decode(b64.data[0].b64_json)) == (256, 256)
    edited = v1.images.edit(
        image=("in.png", make_png(32, 32, "x"), "image/png"),
        prompt="paint it red",
        size="256x256",
        response_format="b64_json",
    )
    assert edited.data is not None and edited.data[0].b64_json is not None
    assert emu.llm.calls[-1].endpoint == "image_edit"
    assert emu.llm.calls[-1].files["image"] == make_png(32, 32, "x")
