"""Audio transcriptions and translations: validation, duration and the five response formats."""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import OpenAIError
from .hashing import unit_float
from .validation import Fields, invalid_value, missing

__all__ = ["AudioRequest", "FormFields", "render_audio", "validate_audio"]

_RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
_EXTENSIONS = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
_MAX_FILE_BYTES = 25 * 1024 * 1024
# Without a WAV header the duration is estimated as a 128 kbit/s stream.
_FALLBACK_BYTES_PER_SECOND = 16000
_LANGUAGES = {
    "en": "english", "de": "german", "fr": "french", "es": "spanish", "it": "italian",
    "pt": "portuguese", "nl": "dutch", "tr": "turkish", "ru": "russian", "ja": "japanese",
    "zh": "chinese", "ko": "korean", "ar": "arabic", "hi": "hindi", "pl": "polish",
}  # fmt: skip
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

FormFields = Mapping[str, str | Sequence[str]]


@dataclass(frozen=True)
class AudioRequest:
    """A validated transcription or translation request."""

    model: str
    task: str  # "transcribe" or "translate"
    prompt: str
    language: str | None
    response_format: str
    temperature: float
    granularities: tuple[str, ...]
    file_sha256: str
    duration: float


def _wav_duration(data: bytes) -> float | None:
    """Duration of a RIFF/WAVE file from its fmt and data chunks, or None if it is not one."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    at, byte_rate, data_size = 12, 0, None
    while at + 8 <= len(data):
        chunk_id, size = data[at : at + 4], struct.unpack("<I", data[at + 4 : at + 8])[0]
        if chunk_id == b"fmt " and size >= 12:
            byte_rate = struct.unpack("<I", data[at + 16 : at + 20])[0]
        elif chunk_id == b"data":
            data_size = min(size, len(data) - at - 8)
            break
        at += 8 + size + (size & 1)  # chunks are word-aligned
    if not byte_rate or data_size is None:
        return None
    return float(data_size) / float(byte_rate)


def _duration_of(data: bytes) -> float:
    seconds = _wav_duration(data)
    if seconds is None:
        seconds = len(data) / _FALLBACK_BYTES_PER_SECOND
    return round(max(seconds, 0.01), 2)


def _field(fields: FormFields, name: str) -> str | None:
    value = fields.get(name)
    if isinstance(value, (list, tuple)):
        return str(value[0]) if value else None
    return None if value is None else str(value)


def _granularities(fields: FormFields) -> tuple[str, ...]:
    values: list[str] = []
    for name in ("timestamp_granularities[]", "timestamp_granularities"):
        raw = fields.get(name)
        if raw is None:
            continue
        items = [raw] if isinstance(raw, str) else list(raw)
        for item in items:
            values.extend(part.strip() for part in str(item).split(",") if part.strip())
    for value in values:
        if value not in ("word", "segment"):
            raise invalid_value("timestamp_granularities", value, ["word", "segment"])
    return tuple(dict.fromkeys(values))


def validate_audio(
    fields: FormFields, file: bytes | None, *, filename: str | None, translate: bool
) -> AudioRequest:
    """Check a transcription (or, with `translate`, translation) form as OpenAI does.

    Args:
        fields: The multipart form fields.
        file: The uploaded audio, or None when missing.
        filename: The upload's file name (its extension names the format).
        translate: Whether this is /audio/translations.

    Raises:
        OpenAIError: 400 in OpenAI's words for a missing or invalid field or file.
    """
    flat = {name: _field(fields, name) for name in fields}
    form = Fields(flat, form=True)
    model = form.string("model", required=True)
    assert model is not None
    if file is None:
        raise missing("file")
    if not file:
        raise OpenAIError("The audio file is empty.", param="file", code="invalid_value")
    if len(file) > _MAX_FILE_BYTES:
        raise OpenAIError(
            "Maximum content size limit (26214400) exceeded.", status=413, param="file"
        )
    if filename is not None:
        extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        if extension not in _EXTENSIONS:
            raise OpenAIError(
                f"Invalid file format. Supported formats: {list(_EXTENSIONS)}",
                param="file",
                code="invalid_value",
            )
    response_format = form.choice("response_format", _RESPONSE_FORMATS, default="json")
    granularities = _granularities(fields)
    if granularities and response_format != "verbose_json":
        raise OpenAIError(
            "timestamp_granularities requires response_format=verbose_json.",
            param="timestamp_granularities",
            code="invalid_value",
        )
    temperature = form.number("temperature", lo=0, hi=1, default=0.0)
    assert temperature is not None
    return AudioRequest(
        model=model,
        task="translate" if translate else "transcribe",
        prompt=form.string("prompt") or "",
        language=None if translate else form.string("language"),
        response_format=response_format,
        temperature=temperature,
        granularities=granularities or ("segment",),
        file_sha256=hashlib.sha256(file).hexdigest(),
        duration=_duration_of(file),
    )


def _timestamp(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _segments(req: AudioRequest, text: str) -> list[dict[str, Any]]:
    """Sentences spread over the duration in proportion to their length."""
    sentences = [s for s in _SENTENCE_END.split(text.strip()) if s] or [text]
    total = sum(len(s) for s in sentences) or 1
    segments, start = [], 0.0
    for index, sentence in enumerate(sentences):
        end = round(start + req.duration * len(sentence) / total, 2)
        key = (req.file_sha256, index)
        segments.append(
            {
                "id": index,
                "seek": 0,
                "start": round(start, 2),
                "end": end,
                "text": " " + sentence,
                "tokens": [
                    50364 + int(unit_float("tok", key, w) * 10000) for w in sentence.split()
                ],
                "temperature": req.temperature,
                "avg_logprob": -round(0.1 + 0.4 * unit_float("lp", key), 4),
                "compression_ratio": round(1.1 + 0.6 * unit_float("cr", key), 4),
                "no_speech_prob": round(0.05 * unit_float("ns", key), 4),
            }
        )
        start = end
    return segments


def _words(segments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    words = []
    for segment in segments:
        items = segment["text"].split()
        step = (segment["end"] - segment["start"]) / max(len(items), 1)
        for i, word in enumerate(items):
            start = segment["start"] + i * step
            words.append({"word": word, "start": round(start, 2), "end": round(start + step, 2)})
    return words


def render_audio(req: AudioRequest, text: str) -> tuple[dict[str, Any], str | None, str]:
    """(JSON body, raw text or None, content type). `text`/`srt`/`vtt` answer in plain text.

    The body always holds at least `{"text": ...}` so recorded calls are easy to assert on.
    """
    if req.response_format == "json":
        return {"text": text}, None, "application/json"
    if req.response_format == "text":
        return {"text": text}, text + "\n", "text/plain; charset=utf-8"
    segments = _segments(req, text)
    if req.response_format in ("srt", "vtt"):
        separator = "," if req.response_format == "srt" else "."
        blocks = []
        for i, s in enumerate(segments, 1):
            span = f"{_timestamp(s['start'], separator)} --> {_timestamp(s['end'], separator)}"
            cue = f"{i}\n{span}" if req.response_format == "srt" else span
            blocks.append(f"{cue}\n{s['text'].strip()}\n")
        raw = "\n".join(blocks)
        if req.response_format == "vtt":
            return {"text": text}, "WEBVTT\n\n" + raw, "text/vtt; charset=utf-8"
        return {"text": text}, raw, "text/plain; charset=utf-8"
    language = (
        "english" if req.task == "translate" else _LANGUAGES.get(req.language or "en", req.language)
    )
    body: dict[str, Any] = {
        "task": req.task,
        "language": language,
        "duration": req.duration,
        "text": text,
        "segments": segments,
    }
    if "word" in req.granularities:
        body["words"] = _words(segments)
        if "segment" not in req.granularities:
            del body["segments"]
    return body, None, "application/json"
