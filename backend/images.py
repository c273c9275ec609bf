"""Task images as model input: read directly from disk, from the image cache, or downloaded from
Label Studio, in parallel, each decoded as soon as it arrives (the encoded bytes of a 60,000-task
project are never all held at once)."""
from __future__ import annotations

import io
import logging
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from detection.data import DEFAULT_SIZE, decode_image

from .decoded import DecodedImages, ImageKey
from .image_cache import ImageCache
from .media import MediaReader

log = logging.getLogger(__name__)

#: images larger than this are not decoded (a 28x28 or 32x32 data set needs far less; a
#: decompression bomb declares 20000x20000 in a few hundred bytes)
MAX_IMAGE_PIXELS = 4096 * 4096
_GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F", "P;L"})


class ImageSource:
    """Where the bytes of an image URL come from: a direct read of Label Studio's folders when
    ``media`` can see them, else the ``cache``, else a download through ``client`` (then kept in
    the cache). Counts what came from where."""

    def __init__(self, client, *, media: MediaReader | None = None, cache: ImageCache | None = None):
        self.client, self.media, self.cache = client, media, cache
        self._lock = threading.Lock()
        self._folders: dict = {}  # resolved media folders, for this source's life (one job)
        self.counts = {"direct": 0, "cached": 0, "downloaded": 0}

    def fetch(self, url: str) -> bytes:
        """The bytes of ``url``; raises (``ValueError``, ``LabelStudioError``, ``OSError``)."""
        data, how = None, "direct"
        if self.media is not None and self.media.enabled:
            data = self.media.read(url, folders=self._folders)
        if data is None and self.cache is not None:
            data, how = self.cache.get(url), "cached"
        if data is None:
            data, how = self.client.download(url), "downloaded"
            if self.cache is not None:
                self.cache.put(url, data)
        with self._lock:
            self.counts[how] += 1
        return data

    def stamp(self, url: str) -> str | None:
        """What the decoded-images file keys ``url``'s content by: the size and modification time
        of a file read directly, "" for a URL that comes over HTTP (keyed by URL alone, like the
        cache), None when it must not be taken from there (a path refused)."""
        if self.media is None or not self.media.enabled:
            return ""
        try:
            path = self.media.path_of(url, folders=self._folders)
        except ValueError:
            return None
        if path is None:
            return ""
        try:
            st = path.stat()
        except OSError:
            return ""  # not on this disk: fetched over HTTP
        return f"{st.st_size}:{st.st_mtime_ns}"


@dataclass
class LoadedImages:
    """``x (M, C, H, W) float32`` of the readable images in URL order; ``errors[i]`` is None for
    a readable URL, else why it was left out; ``sources``: how many came from where."""

    x: np.ndarray
    errors: list[str | None]
    channels: int
    sources: dict = field(default_factory=dict)


def header_error(data: bytes, *, max_pixels: int = MAX_IMAGE_PIXELS) -> str | None:
    """Why ``data`` must not be decoded (unreadable header, too many pixels), or None.
    Reads the header only."""
    try:
        _header(data, max_pixels=max_pixels)
    except ValueError as exc:
        return str(exc)
    return None


def _header(data: bytes, *, max_pixels: int) -> int:
    """Channels (1 gray, 3 color) from the header; ``ValueError`` for a bad or huge image."""
    try:
        with warnings.catch_warnings():  # PIL warns past 89M pixels; the limit below decides
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                (width, height), mode = img.size, img.mode
    except Image.DecompressionBombError as exc:
        raise ValueError(f"image refused: {exc}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"not a readable image: {exc}") from None
    if width * height > max_pixels:
        raise ValueError(f"image refused: {width}x{height} is over the {max_pixels}-pixel limit")
    return 1 if mode in _GRAY_MODES else 3


def _decode(data: bytes, *, channels: int | None, max_pixels: int) -> np.ndarray:
    native = _header(data, max_pixels=max_pixels)
    c = channels or native
    try:
        return decode_image(data, channels=c, size=DEFAULT_SIZE[c])
    except Image.DecompressionBombError as exc:
        raise ValueError(f"image refused: {exc}") from None


def load_images(urls: Sequence[str], *, source: ImageSource, workers: int = 8,
                channels: int | None = None, max_pixels: int = MAX_IMAGE_PIXELS,
                decoded: DecodedImages | None = None) -> LoadedImages:
    """Fetch and decode every URL. ``channels`` None: 1 when every readable image is gray, else
    3 (gray ones are then repeated over three channels). A URL that cannot be fetched or decoded
    (missing, refused, a decompression bomb, a broken file) is left out with its reason; it
    never fails the whole load. Raises ``ValueError`` when no image is readable.

    ``decoded`` (with ``channels`` None): images unchanged since the set saved there are taken
    from it instead of being read and decoded, and the readable images are saved there after."""
    def one(url: str):
        try:
            return _decode(source.fetch(url), channels=channels, max_pixels=max_pixels)
        except Exception as exc:  # one bad image marks its task, it does not fail the job
            return f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) else str(exc)

    def fetch(positions: list[int]) -> None:
        if positions:
            with ThreadPoolExecutor(max_workers=max(1, min(workers, len(positions)))) as pool:
                for i, res in zip(positions, pool.map(one, [urls[i] for i in positions])):
                    results[i] = res

    use_saved = decoded is not None and channels is None
    stamps = [source.stamp(u) for u in urls] if use_saved else [None] * len(urls)
    previous = decoded.read() if use_saved and urls else None
    hits: dict[int, int] = {}  # position -> row of the saved set
    if previous is not None:
        for i, (url, stamp) in enumerate(zip(urls, stamps)):
            row = previous.rows.get((url, stamp)) if stamp is not None else None
            if row is not None:
                hits[i] = row
    results: list[np.ndarray | str | None] = [None] * len(urls)
    fetch([i for i in range(len(urls)) if i not in hits])
    natives = {i: r.shape[0] for i, r in enumerate(results) if isinstance(r, np.ndarray)}
    natives.update((i, previous.natives[row]) for i, row in hits.items())
    if not natives:
        raise ValueError("none of the images could be read"
                         + (": " + next(r for r in results if isinstance(r, str)) if results else ""))
    if channels is None:
        channels = 1 if all(c == 1 for c in natives.values()) else 3
    size = DEFAULT_SIZE[channels]
    if hits and (channels, size) != previous.pixels.shape[1:3]:  # saved otherwise: decode again
        fetch(sorted(hits))
        hits = {}
    readable = [i for i in range(len(urls)) if i in hits or isinstance(results[i], np.ndarray)]
    x = np.empty((len(readable), channels, size, size), dtype=np.float32)
    for pos, i in enumerate(readable):
        if i in hits:
            x[pos] = previous.pixels[hits[i]].astype(np.float32) / 255.0
        else:
            arr = results[i]
            x[pos] = arr if arr.shape[0] == channels else _as_color(arr, size=size)
    # the saved set already holds exactly these images in this order: nothing to write
    unchanged = (previous is not None and len(hits) == len(readable) == len(previous.rows)
                 and all(hits[i] == pos for pos, i in enumerate(readable)))
    if use_saved and not unchanged:
        decoded.save([ImageKey(urls[i], stamps[i] or "", natives[i]) for i in readable], x)
    errors = [None if i in hits or isinstance(results[i], np.ndarray) else results[i]
              for i in range(len(urls))]
    sources = dict(source.counts, decoded=len(hits)) if use_saved else dict(source.counts)
    return LoadedImages(x=x, errors=errors, channels=channels, sources=sources)


def _as_color(gray: np.ndarray, *, size: int) -> np.ndarray:
    """A ``(1, h, w)`` gray image as ``(3, size, size)``."""
    img = Image.fromarray(np.clip(gray[0] * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    if img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    return np.repeat(arr[None], 3, axis=0)
