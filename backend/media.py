"""Direct reads of Label Studio's media when the backend sees the same folders.

Label Studio serves ``/data/local-files/?d=<path>`` from ``LOCAL_FILES_DOCUMENT_ROOT`` and
``/data/upload/<path>`` from its media folder (``<MEDIA_ROOT>/upload``). When those folders are
mounted on the backend (read-only is enough), reading the file costs microseconds instead of an
HTTP request of tens of milliseconds. No path may leave its root: ``..``, absolute paths and
symbolic links pointing out are refused with ``ValueError``.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

LOCAL_FILES_PREFIX = "/data/local-files/"
UPLOAD_PREFIX = "/data/upload/"


class MediaReader:
    """``local_files_root``: Label Studio's LOCAL_FILES_DOCUMENT_ROOT as the backend sees it;
    ``media_root``: Label Studio's media folder (holding ``upload/``). Either may be None."""

    def __init__(self, *, local_files_root: str | os.PathLike | None = None,
                 media_root: str | os.PathLike | None = None, max_bytes: int = 10 * 1024 * 1024):
        self.local_files_root = Path(local_files_root).resolve() if local_files_root else None
        self.upload_root = (Path(media_root) / "upload").resolve() if media_root else None
        self.max_bytes = max_bytes

    @property
    def enabled(self) -> bool:
        return self.local_files_root is not None or self.upload_root is not None

    def path_of(self, url: str, *, folders: dict | None = None) -> Path | None:
        """The local file behind a Label Studio media URL (relative, or absolute on any host:
        only the path counts), or None when this reader has no root for it. Raises
        ``ValueError`` for a path that would leave its root. ``folders``: resolved folders kept
        between calls (one job's; a folder's symlinks are then read once, not per file)."""
        parts = urlsplit(url)
        if parts.path == LOCAL_FILES_PREFIX or parts.path == LOCAL_FILES_PREFIX.rstrip("/"):
            if self.local_files_root is None:
                return None
            rel = (parse_qs(parts.query).get("d") or [""])[0]
            return _inside(self.local_files_root, rel, folders=folders)
        if parts.path.startswith(UPLOAD_PREFIX) and self.upload_root is not None:
            return _inside(self.upload_root, unquote(parts.path[len(UPLOAD_PREFIX):]), folders=folders)
        return None

    def read(self, url: str, *, folders: dict | None = None) -> bytes | None:
        """The file's bytes, or None when it is not readable here (the caller falls back to
        HTTP). Raises ``ValueError`` for traversal or a file over ``max_bytes``. ``folders``:
        as for :meth:`path_of`."""
        path = self.path_of(url, folders=folders)
        if path is None:
            return None
        try:
            size = path.stat().st_size
            if size > self.max_bytes:
                raise ValueError(f"{url} is {size} bytes, over the {self.max_bytes} limit")
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, PermissionError, NotADirectoryError):
            return None


def _inside(root: Path, rel: str, *, folders: dict | None = None) -> Path:
    """``root / rel`` with every symlink resolved; ``ValueError`` when it is not under ``root``.
    With ``folders``, the folder part is resolved once per folder: realpath(folder / name) is
    realpath(folder) / name unless name is itself a symlink (then resolved whole) or a dot."""
    if not rel or "\0" in rel:
        raise ValueError(f"empty or invalid media path {rel!r}")
    if os.path.isabs(rel) or rel.startswith(("/", "\\")):
        raise ValueError(f"refusing the absolute media path {rel!r}")
    folder, _, name = rel.rpartition("/")
    if folders is None or name in ("", ".", ".."):
        path = (root / rel).resolve()
    else:
        key = (root, folder)
        parent = folders.get(key)
        if parent is None:
            parent = folders[key] = (root / folder).resolve()
        path = parent / name
        if path.is_symlink():
            path = path.resolve()
    if not path.is_relative_to(root):
        raise ValueError(f"refusing {rel!r}: it leaves {root}")
    return path
