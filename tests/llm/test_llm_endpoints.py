"""The other OpenAI-compatible endpoints: completions, embeddings, audio, images, models."""

from __future__ import annotations

import base64
import json
import math
import struct
import zlib
from typing import Any

import pytest
from llm_helpers import NOW
from qstash_emulator.llm import (
    LLAMA_3_8B,
    MISTRAL_7B,
    LLMEngine,
    LLMErrorSpec,
    make_png,
    png_size,
)
from qstash_emulator.llm.tokenizers import model_tokenizer

# -- legacy completions ------------------------------------------------------------------


def test_completion_shape_and_default_max_tokens(engine: LLMEngine) -> None:
    outcome = engine.completion({"model": LLAMA_3_8B, "prompt": "Once upon a time"}, now=NOW)
    assert outcome.status == 200
    response = outcome.body
    assert list(response) == ["id", "object", "created", "model", "choices", "usage"]
    assert response["id"].startswith("cmpl-") and response["object"] == "text_completion"
    assert response["created"] == 1717483987
    [choice] = response["choices"]
    assert list(choice) == ["text", "index", "logprobs", "finish_reason"]
    # OpenAI's default max_tokens for this endpoint is 16; the default text is longer. Llama 3's
    # tokenizer counts (the prompt: <|begin_of_text|> and 4 tokens).
    llama3 = model_tokenizer(LLAMA_3_8B)
    assert llama3 is not None
    assert llama3.count(choice["text"]) == 16 and choice["finish_reason"] == "length"
    assert response["usage"] == {"prompt_tokens": 5, "completion_tokens": 16, "total_tokens": 21}
    again = engine.completion({"model": LLAMA_3_8B, "prompt": "Once upon a time"}, now=NOW)
    assert again.body["choices"] == response["choices"]


def test_completion_rules_echo_stop_logprobs_and_lists(engine: LLMEngine) -> None:
    engine.reply(endpoint="completion", contains="2+2", content=" 4. Done")
    request = {
        "model": MISTRAL_7B,
        "prompt": ["2+2=", "other"],
        "n": 2,
        "stop": ".",
        "echo": True,
        "logprobs": 2,
    }
    outcome = engine.completion(request, now=NOW)
    choices = outcome.body["choices"]
    assert [c["index"] for c in choices] == [0, 1, 2, 3]
    assert choices[0]["text"] == "2+2= 4" and choices[1]["text"] == "2+2= 4"
    assert choices[0]["finish_reason"] == "stop"
    assert choices[2]["text"].startswith("other")
    logprobs = choices[0]["logprobs"]
    assert logprobs["tokens"] == ["2", "+", "2", "=", " 4"]
    assert logprobs["text_offset"] == [0, 1, 2, 3, 4]
    assert all(len(top) == 2 for top in logprobs["top_logprobs"])
    assert engine.calls[-1].rule is engine.rules[0]


def test_completion_stream(engine: LLMEngine) -> None:
    engine.reply(content="a b c")
    outcome = engine.completion(
        {
            "model": LLAMA_3_8B,
            "prompt": "x",
            "stream": True,
            "stream_options": {"include_usage": True},
        },
        now=NOW,
    )
    assert outcome.chunks is not None
    *text_chunks, usage_chunk = outcome.chunks
    assert all(c["object"] == "text_completion" for c in outcome.chunks)
    assert [c["choices"][0]["text"] for c in text_chunks] == ["a", " b", " c", ""]
    assert text_chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["completion_tokens"] == 3


@pytest.mark.parametrize(
    ("request_body", "param"),
    [
        ({"model": LLAMA_3_8B}, "prompt"),
        ({"model": LLAMA_3_8B, "prompt": 5}, "prompt"),
        ({"model": LLAMA_3_8B, "prompt": "x", "logprobs": 6}, "logprobs"),
        ({"model": LLAMA_3_8B, "prompt": "x", "n": 3, "best_of": 2}, "best_of"),
        ({"model": LLAMA_3_8B, "prompt": "x", "echo": "yes"}, "echo"),
    ],
)
def test_completion_validation(engine: LLMEngine, request_body: Any, param: str) -> None:
    outcome = engine.completion(request_body, now=NOW)
    assert outcome.status == 400 and outcome.body["error"]["param"] == param


def test_completion_token_prompts_and_scripted_error(engine: LLMEngine) -> None:
    assert engine.completion({"model": LLAMA_3_8B, "prompt": [1, 2, 3]}, now=NOW).ok
    assert engine.completion({"model": LLAMA_3_8B, "prompt": [[1, 2], [3]]}, now=NOW).ok
    assert engine.completion({"model": "davinci", "prompt": "x"}, now=NOW).status == 404
    engine.reply(endpoint="completion", error=LLMErrorSpec.rate_limited())
    assert engine.completion({"model": LLAMA_3_8B, "prompt": "x"}, now=NOW).status == 429


# -- embeddings ---------------------------------------------------------------------------


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_embeddings_shape_and_determinism(engine: LLMEngine) -> None:
    request = {"model": "text-embedding-3-small", "input": ["the cat sat", "the cat sat"]}
    outcome = engine.embeddings(request, now=NOW)
    response = outcome.body
    assert list(response) == ["object", "data", "model", "usage"]
    assert response["object"] == "list" and response["model"] == "text-embedding-3-small"
    first, second = response["data"]
    assert (first["object"], first["index"], second["index"]) == ("embedding", 0, 1)
    assert len(first["embedding"]) == 1536
    assert first["embedding"] == second["embedding"]
    assert math.isclose(cosine(first["embedding"], first["embedding"]), 1.0, rel_tol=1e-5)
    assert response["usage"] == {"prompt_tokens": 6, "total_tokens": 6}
    other = LLMEngine(seed=99).embeddings({**request, "input": "the cat sat"}, now=NOW)
    assert other.body["data"][0]["embedding"] == first["embedding"]  # same input, same vector


def test_embeddings_similarity_follows_shared_words() -> None:
    engine = LLMEngine(embedding_dim=256)

    def vector(text: str) -> list[float]:
        outcome = engine.embeddings({"model": "m", "input": text}, now=NOW)
        return list(outcome.body["data"][0]["embedding"])

    cat = vector("the cat sat on the mat")
    assert len(cat) == 256
    assert cosine(cat, vector("a cat sat on a mat")) > cosine(cat, vector("stock prices fell"))
    assert vector("dog bites man") != vector("man bites dog")


def test_embeddings_dimensions_and_base64(engine: LLMEngine) -> None:
    request = {"model": "text-embedding-3-large", "input": "hello", "dimensions": 8}
    floats = engine.embeddings(request, now=NOW).body["data"][0]["embedding"]
    assert len(floats) == 8
    encoded = engine.embeddings({**request, "encoding_format": "base64"}, now=NOW)
    raw = base64.b64decode(encoded.body["data"][0]["embedding"])
    assert list(struct.unpack("<8f", raw)) == floats  # the same float32 values


@pytest.mark.parametrize(
    ("request_body", "param"),
    [
        ({"input": "x"}, "model"),
        ({"model": "m"}, "input"),
        ({"model": "m", "input": ""}, "input"),
        ({"model": "m", "input": ["a", ""]}, "input"),
        ({"model": "m", "input": [1.5]}, "input"),
        ({"model": "m", "input": 3}, "input"),
        ({"model": "m", "input": "x", "encoding_format": "hex"}, "encoding_format"),
        ({"model": "m", "input": "x", "dimensions": 0}, "dimensions"),
        ({"model": "text-embedding-ada-002", "input": "x", "dimensions": 8}, "dimensions"),
    ],
)
def test_embeddings_validation(engine: LLMEngine, request_body: Any, param: str) -> None:
    outcome = engine.embeddings(request_body, now=NOW)
    assert outcome.status == 400 and outcome.body["error"]["param"] == param


def test_embeddings_token_inputs_and_latency_rule(engine: LLMEngine) -> None:
    engine.reply(endpoint="embeddings", latency=2)
    outcome = engine.embeddings({"model": "m", "input": [[1, 2], [3]]}, now=NOW)
    assert outcome.latency == 2.0 and len(outcome.body["data"]) == 2


# -- audio ---------------------------------------------------------------------------------


def wav(seconds: float, rate: int = 8000) -> bytes:
    frames = b"\x00\x00" * int(seconds * rate)
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    chunks += b"data" + struct.pack("<I", len(frames)) + frames
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def test_transcription_default_is_deterministic(engine: LLMEngine) -> None:
    audio = wav(2.5)
    outcome = engine.transcription({"model": "whisper-1"}, audio, now=NOW, filename="a.wav")
    assert outcome.status == 200 and outcome.raw is None
    assert list(outcome.body) == ["text"] and outcome.body["text"]
    again = engine.transcription({"model": "whisper-1"}, audio, now=NOW)
    assert again.body == outcome.body
    other = engine.transcription({"model": "whisper-1"}, wav(1.0), now=NOW)
    assert other.body != outcome.body
    call = engine.calls[0]
    assert call.endpoint == "transcription" and call.files == {"file": audio}
    assert call.body == {"model": "whisper-1"}


def test_transcription_verbose_json_uses_wav_duration(engine: LLMEngine) -> None:
    engine.reply(endpoint="transcription", content="Hello there. How are you?")
    fields = {
        "model": "whisper-1",
        "response_format": "verbose_json",
        "language": "de",
        "timestamp_granularities[]": ["word", "segment"],
    }
    response = engine.transcription(fields, wav(4.0), now=NOW).body
    assert (response["task"], response["language"], response["duration"]) == (
        "transcribe", "german", 4.0,
    )  # fmt: skip
    assert response["text"] == "Hello there. How are you?"
    segments = response["segments"]
    assert [s["text"] for s in segments] == [" Hello there.", " How are you?"]
    assert segments[0]["start"] == 0.0 and segments[-1]["end"] == 4.0
    assert {"id", "seek", "tokens", "avg_logprob", "no_speech_prob"} <= set(segments[0])
    assert [w["word"] for w in response["words"]] == ["Hello", "there.", "How", "are", "you?"]


@pytest.mark.parametrize(
    ("response_format", "content_type", "expected"),
    [
        ("text", "text/plain; charset=utf-8", "One. Two.\n"),
        ("srt", "text/plain; charset=utf-8",
         "1\n00:00:00,000 --> 00:00:01,000\nOne.\n\n2\n00:00:01,000 --> 00:00:02,000\nTwo.\n"),
        ("vtt", "text/vtt; charset=utf-8",
         "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nOne.\n\n00:00:01.000 --> 00:00:02.000\nTwo.\n"),
    ],
)  # fmt: skip
def test_transcription_text_formats(
    engine: LLMEngine, response_format: str, content_type: str, expected: str
) -> None:
    engine.reply(endpoint="transcription", content="One. Two.")
    outcome = engine.transcription(
        {"model": "whisper-1", "response_format": response_format}, wav(2.0), now=NOW
    )
    assert (outcome.raw, outcome.content_type) == (expected, content_type)
    assert outcome.body == {"text": "One. Two."}


def test_translation(engine: LLMEngine) -> None:
    engine.reply(endpoint="translation", contains="names", content="Hello, Ayşe.")
    outcome = engine.transcription(
        {"model": "whisper-1", "prompt": "names: Ayşe", "response_format": "verbose_json"},
        b"\xff\xfb" * 16000,  # not a WAV: 32000 bytes at 16 kB/s
        now=NOW,
        translate=True,
    )
    response = outcome.body
    assert (response["task"], response["language"]) == ("translate", "english")
    assert response["text"] == "Hello, Ayşe." and response["duration"] == 2.0
    assert engine.calls[-1].endpoint == "translation"
    default = engine.transcription({"model": "whisper-1"}, b"abc", now=NOW, translate=True)
    transcribed = engine.transcription({"model": "whisper-1"}, b"abc", now=NOW)
    assert default.body["text"] != transcribed.body["text"]


@pytest.mark.parametrize(
    ("fields", "file", "filename", "param"),
    [
        ({}, b"x", None, "model"),
        ({"model": "whisper-1"}, None, None, "file"),
        ({"model": "whisper-1"}, b"", None, "file"),
        ({"model": "whisper-1"}, b"x", "notes.txt", "file"),
        ({"model": "whisper-1", "response_format": "xml"}, b"x", None, "response_format"),
        ({"model": "whisper-1", "temperature": "1.5"}, b"x", None, "temperature"),
        ({"model": "whisper-1", "timestamp_granularities[]": "word"}, b"x", None,
         "timestamp_granularities"),
        ({"model": "whisper-1", "response_format": "verbose_json",
          "timestamp_granularities[]": "char"}, b"x", None, "timestamp_granularities"),
    ],
)  # fmt: skip
def test_transcription_validation(
    engine: LLMEngine, fields: dict[str, Any], file: bytes | None, filename: str | None, param: str
) -> None:
    outcome = engine.transcription(fields, file, now=NOW, filename=filename)
    assert outcome.status == 400 and outcome.body["error"]["param"] == param


# -- images --------------------------------------------------------------------------------


def decode_png(data: bytes) -> tuple[int, int, bytes]:
    """Parse a PNG with zlib/struct, checking every chunk CRC; returns width, height, pixels."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, idat, size = 8, b"", (0, 0)
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, payload = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + payload)
        if kind == b"IHDR":
            size = struct.unpack(">II", payload[:8])
            assert payload[8:] == bytes([8, 2, 0, 0, 0])
        elif kind == b"IDAT":
            idat += payload
        at += 12 + length
    assert kind == b"IEND"
    return size[0], size[1], zlib.decompress(idat)


def test_make_png_is_valid_and_deterministic() -> None:
    png = make_png(20, 12, "a prompt")
    width, height, raw = decode_png(png)
    assert (width, height) == (20, 12) and png_size(png) == (20, 12)
    assert len(raw) == height * (1 + 3 * width)
    assert all(raw[y * 61] == 0 for y in range(height))  # filter byte of each scanline
    assert make_png(20, 12, "a prompt") == png and make_png(20, 12, "another") != png
    assert png_size(b"not a png") is None


def test_image_generation_url_and_b64(engine: LLMEngine) -> None:
    request = {"prompt": "a lighthouse", "size": "256x256", "n": 2}
    by_url = engine.image(request, now=NOW, base_url="http://localhost:8080/")
    response = by_url.body
    assert response["created"] == 1717483987 and len(response["data"]) == 2
    urls = [item["url"] for item in response["data"]]
    assert all(
        u.startswith("http://localhost:8080/images/img-") and u.endswith(".png") for u in urls
    )
    image_id = urls[0].rsplit("/", 1)[1]
    png = engine.image_bytes(image_id)
    assert png is not None and decode_png(png)[:2] == (256, 256)
    assert engine.image_bytes(image_id.removesuffix(".png")) == png
    assert engine.image_bytes("img-unknown") is None
    assert urls[0] != urls[1]  # each of the n images differs
    as_b64 = engine.image({**request, "response_format": "b64_json"}, now=NOW).body
    assert base64.b64decode(as_b64["data"][0]["b64_json"]) == png  # same prompt, same picture


def test_image_models_and_sizes(engine: LLMEngine) -> None:
    dalle3 = engine.image({"model": "dall-e-3", "prompt": "p", "size": "1792x1024"}, now=NOW)
    item = dalle3.body["data"][0]
    assert item["revised_prompt"] == "p"
    png = engine.image_bytes(item["url"].rsplit("/", 1)[1])
    assert png is not None and png_size(png) == (1792, 1024)
    gpt = engine.image({"model": "gpt-image-1", "prompt": "p", "response_format": "url"}, now=NOW)
    assert "b64_json" in gpt.body["data"][0]  # gpt-image-1 always answers in base64


def test_image_edit_takes_form_fields_and_a_png(engine: LLMEngine) -> None:
    source = make_png(16, 16, "source")
    fields = {"prompt": "add a hat", "n": "2", "size": "256x256", "response_format": "b64_json"}
    outcome = engine.image(fields, now=NOW, edit=True, image=source, mask=make_png(16, 16, "m"))
    assert outcome.status == 200 and len(outcome.body["data"]) == 2
    edited = base64.b64decode(outcome.body["data"][0]["b64_json"])
    generated = engine.image({"prompt": "add a hat", "size": "256x256"}, now=NOW)
    assert png_size(edited) == (256, 256)
    generated_png = engine.image_bytes(generated.body["data"][0]["url"].rsplit("/", 1)[1])
    assert edited != generated_png  # the input image feeds the result
    call = engine.calls[0]
    assert call.endpoint == "image_edit" and set(call.files) == {"image", "mask"}


@pytest.mark.parametrize(
    ("request_body", "kwargs", "param"),
    [
        ({}, {}, "prompt"),
        ({"prompt": ""}, {}, "prompt"),
        ({"prompt": "p", "n": 11}, {}, "n"),
        ({"prompt": "p", "model": "dall-e-3", "n": 2}, {}, "n"),
        ({"prompt": "p", "size": "100x100"}, {}, "size"),
        ({"prompt": "p", "model": "dall-e-2", "size": "1792x1024"}, {}, "size"),
        ({"prompt": "p", "response_format": "jpeg"}, {}, "response_format"),
        ({"prompt": "p", "style": "baroque"}, {}, "style"),
        ({"prompt": "p"}, {"edit": True}, "image"),
        ({"prompt": "p"}, {"edit": True, "image": b"GIF89a"}, "image"),
        ({"prompt": "p"}, {"edit": True, "image": make_png(4, 4), "mask": make_png(2, 2)}, "mask"),
        ({"prompt": "p", "n": "two"}, {"edit": True, "image": make_png(4, 4)}, "n"),
    ],
)
def test_image_validation(
    engine: LLMEngine, request_body: dict[str, Any], kwargs: dict[str, Any], param: str
) -> None:
    outcome = engine.image(request_body, now=NOW, **kwargs)
    assert outcome.status == 400 and outcome.body["error"]["param"] == param


def test_image_rules_can_fail(engine: LLMEngine) -> None:
    engine.reply(endpoint=["image", "image_edit"], contains="forbidden", error=400, times=1)
    assert engine.image({"prompt": "forbidden art"}, now=NOW).status == 400
    assert engine.image({"prompt": "forbidden art", "size": "256x256"}, now=NOW).ok


# -- models -------------------------------------------------------------------------------


def test_models_list(engine: LLMEngine) -> None:
    outcome = engine.models(now=NOW)
    response = outcome.body
    assert response["object"] == "list"
    ids = [m["id"] for m in response["data"]]
    assert ids[:2] == [LLAMA_3_8B, MISTRAL_7B] and "whisper-1" in ids
    assert response["data"][0] == {
        "id": LLAMA_3_8B,
        "object": "model",
        "created": 1713398400,
        "owned_by": "upstash",
    }
    assert engine.models(now=NOW + 100).body == response  # stable
    assert engine.calls[-1].endpoint == "models"


def test_model_retrieve(engine: LLMEngine) -> None:
    found = engine.model(MISTRAL_7B, now=NOW)
    assert found.status == 200 and found.body["id"] == MISTRAL_7B
    missing = engine.model("nope", now=NOW)
    assert missing.status == 404 and missing.body["error"]["code"] == "model_not_found"
    assert json.dumps(missing.body)  # serializable
