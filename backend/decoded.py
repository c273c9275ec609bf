"""The images of the previous training, decoded, so that a retrain reads and decodes only the
images that are new or changed (17 s of a 60,000-task retrain otherwise, from local disk).

One file, ``<directory>/decoded.bin``: a magic tag, the length of a JSON header, the header
(``channels``, ``size``, the SHA-256 of the pixels, and per image its URL, its stamp and its
native channel count) and the pixels, ``uint8 (N, C, size, size)``. Written to a temporary file
and renamed into place (a crash leaves the previous file or the new one, never half of one);
checked on read (a wrong tag, header or checksum and the file is ignored: every image is read
again). The file holds exactly the images of the last training, so it is bounded by the
project's size (47 MB for 60,000 gray 28x28 images).

An image is taken from the file when its URL and its stamp are the same as then. The stamp of a
file read directly from Label Studio's folders is its size and modification time, so a file
replaced on disk is decoded again; other URLs are keyed by URL alone, as the byte cache is
(:mod:`backend.image_cache`: Label Studio's upload URLs name a file that never changes).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import tempfile
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

log = logging.getLogger(__name__)

MAGIC = b"DECODED1\n"
_LENGTH = struct.Struct("<Q")
#: rows converted to uint8 at a time when saving (bounds the temporary float copy)
_CHUNK = 4096


class ImageKey(NamedTuple):
    """What an image was decoded from: its URL, a stamp of its content ("" when keyed by URL
    alone) and its native channels (1 gray, 3 color)."""

    url: str
    stamp: str
    native: int


class Decoded(NamedTuple):
    """A saved set: ``pixels uint8 (N, channels, size, size)`` and where each key's row is."""

    pixels: np.ndarray
    rows: dict[tuple[str, str], int]
    natives: list[int]


class DecodedImages:
    """The decoded-images file of one project (see the module docstring)."""

    def __init__(self, directory: str | os.PathLike):
        self.path = Path(directory) / "decoded.bin"

    def read(self) -> Decoded | None:
        """The saved images, or None when there are none or the file is not valid (logged)."""
        try:
            blob = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return _parse(blob)
        except (ValueError, KeyError, TypeError, struct.error) as exc:
            log.warning("decoded images: ignoring %s (%s); every image is read again", self.path, exc)
            return None

    def save(self, keys: Sequence[ImageKey], x: np.ndarray) -> None:
        """Keep ``x (N, C, size, size) float32`` in [0, 1] (rows in ``keys`` order), atomically."""
        if x.ndim != 4 or x.shape[2] != x.shape[3] or len(keys) != len(x):
            raise ValueError(f"expected (N, C, size, size) images for {len(keys)} keys, got {x.shape}")
        pixels = np.empty(x.shape, dtype=np.uint8)
        for start in range(0, len(x), _CHUNK):  # x holds k / 255: rint gives k back exactly
            pixels[start:start + _CHUNK] = np.rint(x[start:start + _CHUNK] * 255.0).clip(0, 255)
        data = pixels.tobytes()
        header = json.dumps({"channels": int(x.shape[1]), "size": int(x.shape[2]),
                             "sha256": hashlib.sha256(data).hexdigest(),
                             "keys": [list(k) for k in keys]}).encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".decoded-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(MAGIC + _LENGTH.pack(len(header)) + header)
                fh.write(data)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _parse(blob: bytes) -> Decoded:
    if not blob.startswith(MAGIC):
        raise ValueError("not a decoded-images file")
    start = len(MAGIC) + _LENGTH.size
    (length,) = _LENGTH.unpack(blob[len(MAGIC):start])
    header = json.loads(blob[start:start + length].decode("utf-8"))
    data = blob[start + length:]
    if hashlib.sha256(data).hexdigest() != header["sha256"]:
        raise ValueError("its pixels do not match their checksum")
    channels, size, keys = int(header["channels"]), int(header["size"]), header["keys"]
    if channels not in (1, 3) or len(data) != len(keys) * channels * size * size:
        raise ValueError("its header does not match its pixels")
    pixels = np.frombuffer(data, dtype=np.uint8).reshape(len(keys), channels, size, size)
    rows = {(str(url), str(stamp)): i for i, (url, stamp, _) in enumerate(keys)}
    return Decoded(pixels=pixels, rows=rows, natives=[int(k[2]) for k in keys])
