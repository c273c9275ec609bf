"""Image files into a Label Studio project as annotated tasks, in batches.

Two storage modes:
- ``upload``: files are uploaded without creating tasks
  (``POST /api/projects/<id>/import?commit_to_project=false``), then tasks *with* their
  annotation are imported as JSON pointing at the uploaded files (``/data/upload/...``);
- ``local``: tasks point at ``/data/local-files/?d=<path relative to the document root>``
  (a Local Files storage serves them; nothing is copied).

One request at a time: Label Studio's default SQLite database answers "database is locked" to
concurrent imports, and this side is not the limit (about 1% of a CPU while importing).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, NamedTuple, Sequence
from urllib.parse import quote

from backend.labels import LabelSpec
from backend.ls_client import LabelStudioClient, LabelStudioError

#: Django's DATA_UPLOAD_MAX_NUMBER_FILES default in Label Studio: files per multipart request
MAX_FILES_PER_UPLOAD = 100
STORAGES = ("upload", "local")


class ImageItem(NamedTuple):
    """An image to import: its file, its path relative to the imported folder (posix), its class."""

    file: Path
    rel: str
    label: str


def make_task(item: ImageItem, image_url: str, spec: LabelSpec) -> dict:
    """A Label Studio task with the item's class as its annotation; ``data.path`` keeps ``rel``."""
    return {"data": {spec.image_key: image_url, "path": item.rel},
            "annotations": [{"result": spec.result(spec.index(item.label))}]}


def local_files_url(file: Path, *, document_root: Path) -> str:
    rel = file.resolve().relative_to(document_root.resolve()).as_posix()
    return "/data/local-files/?d=" + quote(rel, safe="/")


def existing_paths(ls: LabelStudioClient, project: int, *, page_size: int = 1000) -> set[str]:
    """``data.path`` of every task already in the project (paginated, cheap fields only)."""
    return {t["data"]["path"] for t in ls.iter_tasks(project, fields=None, include="id,data",
                                                     page_size=page_size)
            if isinstance(t.get("data"), dict) and t["data"].get("path")}


def upload_files(ls: LabelStudioClient, project: int, items: Sequence[ImageItem]) -> list[str]:
    """Upload files without creating tasks; return their ``/data/upload/...`` URLs in order."""
    if len(items) > MAX_FILES_PER_UPLOAD:
        raise ValueError(f"at most {MAX_FILES_PER_UPLOAD} files per upload, got {len(items)}")
    handles = [open(it.file, "rb") for it in items]
    try:
        files = {f"file{i}": (f"{i}-{it.file.name}", fh) for i, (it, fh) in enumerate(zip(items, handles))}
        body = ls.post(f"/api/projects/{project}/import", None, files=files,
                       params={"commit_to_project": "false"})
    finally:
        for fh in handles:
            fh.close()
    ids = body.get("file_upload_ids") or []
    if len(ids) != len(items):
        raise LabelStudioError(f"Label Studio stored {len(ids)} of {len(items)} uploaded files")
    uploads = ls.get(f"/api/projects/{project}/file-uploads", params={"ids": json.dumps(ids)})
    by_id = {u["id"]: u["file"] for u in uploads}
    if not all(i in by_id for i in ids):
        raise LabelStudioError("Label Studio did not list every uploaded file")
    return ["/data/" + by_id[i].lstrip("/") for i in ids]


def import_tasks(ls: LabelStudioClient, project: int, tasks: list[dict]) -> int:
    """Create ``tasks``; ``LabelStudioError`` unless Label Studio created every one."""
    body = ls.post(f"/api/projects/{project}/import", tasks)
    created = int(body.get("task_count", 0))
    if created != len(tasks):
        raise LabelStudioError(f"Label Studio created {created} of {len(tasks)} tasks")
    return created


def import_items(ls: LabelStudioClient, project: int, items: Sequence[ImageItem], spec: LabelSpec,
                 *, storage: str, batch: int, document_root: Path | None = None,
                 progress: Callable[[int], None] | None = None) -> int:
    """Import ``items`` as annotated tasks in batches; returns the number of tasks created."""
    if storage not in STORAGES:
        raise ValueError(f"--storage must be one of {STORAGES}, got {storage!r}")
    if batch < 1:
        raise ValueError(f"--batch must be at least 1, got {batch}")
    if storage == "local" and document_root is None:
        raise ValueError("--storage local needs the document root (LOCAL_FILES_DOCUMENT_ROOT)")
    if storage == "upload":
        batch = min(batch, MAX_FILES_PER_UPLOAD)
    done = 0
    for start in range(0, len(items), batch):
        chunk = items[start:start + batch]
        if storage == "local":
            urls = [local_files_url(it.file, document_root=document_root) for it in chunk]
        else:
            urls = upload_files(ls, project, chunk)
        n = import_tasks(ls, project, [make_task(it, u, spec) for it, u in zip(chunk, urls)])
        done += n
        if progress:
            progress(n)
    return done
