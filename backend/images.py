"""Download task images from Label Studio in parallel and turn them into model input."""
from __future__ import annotations

import io
import logging
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from detection.data import DEFAULT_SIZE, decode_image

log = logging.getLogger(__name__)

#: images larger than this are not decoded (a 28x28 or 32x32 data set needs far less; a
#: decompression bomb declares 20000x20000 in a few hundred bytes)
MAX_IMAGE_PIXELS = 4096 * 4096


def header_error(data: bytes, *, max_pixels: int = MAX_IMAGE_PIXELS) -> str | None:
    """Why ``data`` must not be decoded (unreadable header, too many pixels), or None.
    Reads the header only."""
    try:
        with warnings.catch_warnings():  # PIL warns past 89M pixels; the limit below decides
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
    except Image.DecompressionBombError as exc:
        return f"image refused: {exc}"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return f"not a readable image: {exc}"
    if width * height > max_pixels:
        return f"image refused: {width}x{height} is over the {max_pixels}-pixel limit"
    return None


def fetch_all(client, urls: Sequence[str], *, workers: int = 8) -> list[bytes | str]:
    """Bytes per URL, or an error message (str) for a URL that could not be fetched."""
    def one(url):
        try:
            return client.download(url)
        except Exception as exc:  # one bad image marks its task, it does not fail the job
            return f"{type(exc).__name__}: {exc}"
    if not urls:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(urls)))) as pool:
        return list(pool.map(one, urls))


def image_mode_channels(data: bytes) -> int | None:
    """1 for gray images, 3 for color, None when unreadable."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return 1 if img.mode in {"1", "L", "LA", "I", "I;16", "F"} else 3
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


def decode_all(blobs: Sequence[bytes | str], *, channels: int | None = None,
               max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[np.ndarray, list[str | None], int]:
    """Decode downloaded blobs into ``x (M, C, H, W)`` for the readable ones.

    Returns ``(x, errors, channels)``: ``errors[i]`` is None for a readable item (in ``x`` in
    order) or the reason it was left out. ``channels`` defaults to 1 when every readable image
    is gray, else 3. Images over ``max_pixels`` or with a broken header are left out (their
    task is marked unreadable; they never fail the job). Raises ``ValueError`` when no image is
    readable.
    """
    errors: list[str | None] = [b if isinstance(b, str) else header_error(b, max_pixels=max_pixels)
                                for b in blobs]
    blobs = [b if e is None else e for b, e in zip(blobs, errors)]
    if channels is None:
        modes = [image_mode_channels(b) for b in blobs if isinstance(b, bytes)]
        known = [m for m in modes if m is not None]
        if not known:
            raise ValueError("none of the images could be read")
        channels = 1 if all(m == 1 for m in known) else 3
    size = DEFAULT_SIZE[channels]
    arrays = []
    for i, blob in enumerate(blobs):
        if errors[i] is not None:
            continue
        try:
            arrays.append(decode_image(blob, channels=channels, size=size))
        except (ValueError, Image.DecompressionBombError) as exc:
            errors[i] = str(exc)
    if not arrays:
        raise ValueError("none of the images could be read: " + next((e for e in errors if e), ""))
    return np.stack(arrays).astype(np.float32), errors, channels
