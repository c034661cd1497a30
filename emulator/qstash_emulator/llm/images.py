"""Image generations and edits: real PNG files, built with zlib and struct, and their store.

The picture is an 8x8 grid of colors drawn from a hash of (model, prompt, input image, index),
at the requested size. Rows of a grid band are identical, so even 1792x1024 images are built
quickly and compress to a few kilobytes.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import OpenAIError
from .hashing import canonical
from .validation import Fields

__all__ = ["ImageRequest", "ImageStore", "make_png", "png_size", "render_images", "validate_image"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_GRID = 8
_SIZES = {
    "dall-e-2": ("256x256", "512x512", "1024x1024"),
    "dall-e-3": ("1024x1024", "1792x1024", "1024x1792"),
    "gpt-image-1": ("1024x1024", "1536x1024", "1024x1536", "auto"),
}
_ANY_SIZE = tuple(dict.fromkeys(s for sizes in _SIZES.values() for s in sizes))
_MAX_IMAGE_BYTES = 4 * 1024 * 1024


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def make_png(width: int, height: int, *key: Any) -> bytes:
    """A valid 8-bit RGB PNG of the given size, deterministic from `key`."""
    palette = hashlib.shake_256(canonical(["png", *key])).digest(_GRID * _GRID * 3)
    colors = [palette[i * 3 : i * 3 + 3] for i in range(_GRID * _GRID)]
    bounds = [width * i // _GRID for i in range(_GRID + 1)]
    band_rows = []
    for band in range(_GRID):
        pixels = b"".join(
            colors[band * _GRID + col] * (bounds[col + 1] - bounds[col]) for col in range(_GRID)
        )
        band_rows.append(b"\x00" + pixels)  # filter type 0 (None) per scanline
    raw = b"".join(band_rows[min(y * _GRID // height, _GRID - 1)] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        _PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 6))
        + _chunk(b"IEND", b"")
    )


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG, or None if the bytes are not one."""
    if len(data) < 24 or not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@dataclass(frozen=True)
class ImageRequest:
    """A validated image generation or edit request (sizes in pixels)."""

    model: str
    prompt: str
    n: int
    width: int
    height: int
    response_format: str  # "url" or "b64_json"
    source_sha256: str | None  # the input image of an edit


def validate_image(
    body: Mapping[str, Any],
    *,
    edit: bool,
    image: bytes | None,
    mask: bytes | None,
    form: bool,
) -> ImageRequest:
    """Check an image generation (or, with `edit`, edit) request as OpenAI does.

    Args:
        body: The JSON body, or the form fields of an edit.
        edit: Whether this is /images/edits.
        image: The uploaded image of an edit.
        mask: The uploaded mask of an edit, if any.
        form: Whether `body` holds form fields (numbers written as text).

    Raises:
        OpenAIError: 400 in OpenAI's words for a missing or invalid field or image.
    """
    if not isinstance(body, Mapping):
        raise OpenAIError("The request body must be a JSON object.", code="invalid_type")
    fields = Fields(body, form=form)
    prompt = fields.string("prompt", required=True)
    assert prompt is not None
    model = fields.string("model") or "dall-e-2"
    n = fields.integer("n", lo=1, hi=10, default=1)
    assert n is not None
    if model == "dall-e-3" and n != 1:
        raise OpenAIError(
            "Invalid 'n': dall-e-3 only supports n=1.", param="n", code="invalid_value"
        )
    sizes = _SIZES.get(model, _ANY_SIZE)
    size = fields.choice("size", sizes, default="1024x1024")
    if size == "auto":
        size = "1024x1024"
    width, height = (int(v) for v in size.split("x"))
    if model == "gpt-image-1":
        response_format = "b64_json"  # gpt-image-1 always answers with base64 images
    else:
        response_format = fields.choice("response_format", ["url", "b64_json"], default="url")
    for name, value in (
        ("quality", ["standard", "hd", "low", "medium", "high", "auto"]),
        ("style", ["vivid", "natural"]),
    ):
        fields.choice(name, value, default=value[0])
    source = None
    if edit:
        if image is None:
            raise OpenAIError(
                "Missing required parameter: 'image'.",
                param="image",
                code="missing_required_parameter",
            )
        for name, data in (("image", image), ("mask", mask)):
            if data is None:
                continue
            if png_size(data) is None or len(data) > _MAX_IMAGE_BYTES:
                raise OpenAIError(
                    f"Invalid '{name}': uploaded image must be a PNG and less than 4 MB.",
                    param=name,
                    code="invalid_image_format",
                )
        if mask is not None and png_size(mask) != png_size(image):
            raise OpenAIError(
                "Invalid 'mask': the mask and the image must have the same dimensions.",
                param="mask",
                code="invalid_value",
            )
        source = hashlib.sha256(image + (mask or b"")).hexdigest()
    return ImageRequest(model, prompt, n, width, height, response_format, source)


class ImageStore:
    """Generated PNGs by id, so that `response_format: url` has something to serve."""

    def __init__(self) -> None:
        self._images: dict[str, bytes] = {}

    def put(self, data: bytes) -> str:
        """Store a PNG; returns its id (derived from the bytes)."""
        image_id = "img-" + hashlib.sha256(data).hexdigest()[:24]
        self._images[image_id] = data
        return image_id

    def get(self, image_id: str) -> bytes | None:
        """A stored PNG by id (with or without ".png"), or None."""
        return self._images.get(image_id.removesuffix(".png"))

    def clear(self) -> None:
        """Forget every image."""
        self._images.clear()


def _image_path(image_id: str) -> str:
    return f"/images/{image_id}.png"


def render_images(
    req: ImageRequest, store: ImageStore, *, created: int, engine_seed: int, base_url: str
) -> dict[str, Any]:
    """The images response: deterministic PNGs, as URLs into `store` or base64.

    Args:
        req: The validated request.
        store: Where URL answers' images are kept for serving.
        created: The `created` timestamp (Unix seconds).
        engine_seed: Makes the pictures differ between seeds.
        base_url: Prefix of the image URLs.
    """
    data = []
    for index in range(req.n):
        png = make_png(
            req.width, req.height, engine_seed, req.model, req.prompt, req.source_sha256, index
        )
        item: dict[str, Any]
        if req.response_format == "b64_json":
            item = {"b64_json": base64.b64encode(png).decode("ascii")}
        else:
            item = {"url": base_url.rstrip("/") + _image_path(store.put(png))}
        if req.model == "dall-e-3":
            # DALL-E 3 rewrites prompts; a stable marker keeps the field realistic and testable.
            item["revised_prompt"] = req.prompt
        data.append(item)
    return {"created": created, "data": data}
