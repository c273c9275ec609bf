"""A bounded on-disk cache of downloaded task images, so a retrain fetches only new images.

Entries live under ``<directory>/<2 hex>/<sha256 of the URL>``; each file is a magic tag, the
SHA-256 of the content and the content, written to a temporary file and renamed into place (a
crash never leaves half an entry), and checked on read (a corrupted entry is dropped and fetched
again). Reads refresh an entry's modification time; past ``max_bytes`` the least recently used
entries are removed until the cache is back under 90% of it. The cache survives restarts: its
size is counted from the files on open.

Keyed by URL: Label Studio's upload URLs name a stored file that never changes; local-files URLs
are read directly from disk when the backend can see them (:mod:`backend.media`) and so are not
cached.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from pathlib import Path

log = logging.getLogger(__name__)

MAGIC = b"IMGC1\n"
_HEADER = len(MAGIC) + 32


class ImageCache:
    """Thread-safe; ``max_bytes`` bounds the content stored (0 turns the cache off)."""

    def __init__(self, directory: str | os.PathLike, *, max_bytes: int):
        if max_bytes < 0:
            raise ValueError(f"the image cache size must be 0 or more bytes, got {max_bytes}")
        self.directory = Path(directory)
        self.max_bytes = int(max_bytes)
        self._lock = threading.Lock()
        self.hits = self.misses = self.corrupt = self.evicted = 0
        self._size = 0
        if self.max_bytes:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._size = sum(f.stat().st_size for f in self._entries())

    @property
    def size_bytes(self) -> int:
        return self._size

    def _path(self, url: str) -> Path:
        key = hashlib.sha256(url.encode("utf-8")).hexdigest()
        return self.directory / key[:2] / key

    def _entries(self):
        for sub in self.directory.iterdir():
            if sub.is_dir() and len(sub.name) == 2:
                yield from (f for f in sub.iterdir() if f.is_file() and not f.name.startswith("."))

    def get(self, url: str) -> bytes | None:
        """The cached content of ``url``, or None (absent, or corrupted and now removed)."""
        if not self.max_bytes:
            return None
        path = self._path(url)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            self.misses += 1
            return None
        content = blob[_HEADER:]
        if blob[:len(MAGIC)] != MAGIC or hashlib.sha256(content).digest() != blob[len(MAGIC):_HEADER]:
            log.warning("image cache: %s is corrupted; fetching %s again", path.name, url)
            self.corrupt += 1
            self._remove(path)
            return None
        try:
            os.utime(path)  # least recently used = oldest modification time
        except FileNotFoundError:
            pass
        self.hits += 1
        return content

    def put(self, url: str, content: bytes) -> None:
        """Store ``content`` for ``url`` atomically; evict old entries past the bound."""
        if not self.max_bytes or len(content) + _HEADER > self.max_bytes:
            return
        path = self._path(url)
        path.parent.mkdir(exist_ok=True)
        blob = MAGIC + hashlib.sha256(content).digest() + content
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
            try:
                old = path.stat().st_size
            except FileNotFoundError:
                old = 0
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        with self._lock:
            self._size += len(blob) - old
            over = self._size > self.max_bytes
        if over:
            self._evict()

    def _remove(self, path: Path) -> None:
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return
        with self._lock:
            self._size -= size

    def _evict(self) -> None:
        """Remove least recently used entries until the cache holds at most 90% of its bound."""
        with self._lock:
            entries = []
            for f in self._entries():
                try:
                    st = f.stat()
                except FileNotFoundError:
                    continue
                entries.append((st.st_mtime_ns, st.st_size, f))
            entries.sort()
            self._size = sum(size for _, size, _ in entries)
            target = int(self.max_bytes * 0.9)
            for _, size, f in entries:
                if self._size <= target:
                    break
                f.unlink(missing_ok=True)
                self._size -= size
                self.evicted += 1

    def stats(self) -> dict:
        return {"bytes": self._size, "max_bytes": self.max_bytes, "hits": self.hits,
                "misses": self.misses, "corrupt": self.corrupt, "evicted": self.evicted}
