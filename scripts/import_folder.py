"""Import a labeled image folder into Label Studio, connect the ML backend, start training.

    python scripts/import_folder.py DIR --url URL --api-key KEY [--title T] [--ml-backend URL]
        [--storage upload|local] [--batch N]

``DIR`` holds ``DIR/<class>/*.png`` or ``DIR/train/<class>/*.png`` (MNIST/CIFAR-style exports).
Every image becomes a task whose annotation is its folder's class; ``data.path`` keeps the path
relative to ``DIR`` so that a second run imports only what is missing.

Storage modes:
- ``upload`` (default): files are uploaded to Label Studio without creating tasks
  (``POST /api/projects/<id>/import?commit_to_project=false``), then tasks *with* their annotation
  are imported as JSON pointing at the uploaded files (``/data/upload/...``).
- ``local``: the folder must be on the Label Studio host under ``LOCAL_FILES_DOCUMENT_ROOT``, with
  ``LOCAL_FILES_SERVING_ENABLED=true``. A Local Files import storage is registered for the folder
  (never synced: a sync would create tasks without annotations) and tasks point at
  ``/data/local-files/?d=<path relative to the document root>``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence
from urllib.parse import quote

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image, UnidentifiedImageError  # noqa: E402

from detection.data import IMAGE_SUFFIXES, class_folders, find_class_root  # noqa: E402
from scripts.ls_api import LabelStudio, LabelStudioError  # noqa: E402

#: image types Label Studio accepts for upload (its SUPPORTED_EXTENSIONS) and that we read
UPLOAD_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"})
#: Django's DATA_UPLOAD_MAX_NUMBER_FILES default in Label Studio: files per multipart request
MAX_FILES_PER_UPLOAD = 100
STORAGES = ("upload", "local")


@dataclass
class ImageItem:
    file: Path
    rel: str  # path relative to the folder given by the user, posix
    label: str


@dataclass
class FolderScan:
    root: Path
    class_root: Path
    classes: list[str]
    items: list[ImageItem]
    skipped: list[str] = field(default_factory=list)


@dataclass
class Schema:
    """The parts of a label config the import needs."""

    image_name: str
    image_key: str  # task data key of the image, e.g. "image" for value="$image"
    choices_name: str
    choices: list[str]


@dataclass
class ImportSummary:
    project_id: int
    project_url: str
    created_project: bool
    found: int
    skipped: int
    already_present: int
    imported: int
    ml_backend_id: int | None = None
    training_started: bool = False
    warnings: list[str] = field(default_factory=list)


# -- folder ----------------------------------------------------------------------------------
def scan_folder(root: str | os.PathLike, *, suffixes: Iterable[str] = IMAGE_SUFFIXES,
                check_images: bool = True) -> FolderScan:
    """List ``root/<class>/*`` (or ``root/train/<class>/*``) images with their folder label.

    Files with another suffix, hidden files and (with ``check_images``) files PIL cannot
    identify are counted in ``skipped``. Raises ``ValueError`` for a missing folder, fewer than
    two class folders, or no image at all.
    """
    root = Path(root).resolve()
    class_root = find_class_root(root)
    classes = class_folders(class_root)
    suffixes = {s.lower() for s in suffixes}
    items, skipped = [], []
    for label in classes:
        for f in sorted((class_root / label).rglob("*")):
            if not f.is_file():
                continue
            rel = f.relative_to(root).as_posix()
            if f.name.startswith(".") or f.suffix.lower() not in suffixes or (
                    check_images and not _is_image(f)):
                skipped.append(rel)
                continue
            items.append(ImageItem(file=f, rel=rel, label=label))
    if not items:
        raise ValueError(f"no image files under {class_root} "
                         f"(looked for {', '.join(sorted(suffixes))}; skipped {len(skipped)} other files)")
    return FolderScan(root=root, class_root=class_root, classes=classes, items=items, skipped=skipped)


def _is_image(path: Path) -> bool:
    try:
        with Image.open(path) as img:
            return bool(img.format)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return False


# -- label config ----------------------------------------------------------------------------
def label_config(classes: Sequence[str]) -> str:
    """An Image + single Choices label config with one choice per class, in the given order."""
    if not classes:
        raise ValueError("at least one class is needed for a label config")
    choices = "\n".join(f'    <Choice value="{_xml_attr(c)}"/>' for c in classes)
    return ('<View>\n'
            '  <Image name="image" value="$image" zoom="true"/>\n'
            '  <Choices name="label" toName="image" choice="single-radio" showInline="true">\n'
            f'{choices}\n'
            '  </Choices>\n'
            '</View>')


def parse_schema(config: str) -> Schema:
    """Find the Image and the Choices that names it in a label config; ``ValueError`` if absent."""
    try:
        tree = ET.fromstring(config)
    except ET.ParseError as exc:
        raise ValueError(f"the label config is not valid XML: {exc}") from None
    images = [el for el in tree.iter() if el.tag == "Image"]
    for img in images:
        name, value = img.get("name"), img.get("value", "")
        for ch in tree.iter("Choices"):
            if ch.get("toName") == name and value.startswith("$"):
                choices = [c.get("value") or c.get("alias") or "" for c in ch.iter("Choice")]
                return Schema(image_name=name, image_key=value[1:], choices_name=ch.get("name"),
                              choices=choices)
    raise ValueError("the label config has no <Image> with a <Choices> pointing at it")


def check_schema(schema: Schema, classes: Sequence[str]) -> None:
    """Every folder class must be one of the config's choices (extra choices are allowed)."""
    missing = [c for c in classes if c not in set(schema.choices)]
    if missing:
        raise ValueError(
            f"the project's label config lacks the choices {missing} (it has {schema.choices}); "
            "use another --title or add these choices in Label Studio")


def _xml_attr(text: str) -> str:
    return (text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
            .replace(">", "&gt;"))


# -- tasks -----------------------------------------------------------------------------------
def make_task(item: ImageItem, image_url: str, schema: Schema) -> dict:
    """A Label Studio task with the folder label as its annotation."""
    return {
        "data": {schema.image_key: image_url, "path": item.rel},
        "annotations": [{"result": [{
            "from_name": schema.choices_name, "to_name": schema.image_name, "type": "choices",
            "value": {"choices": [item.label]}}]}],
    }


def local_files_url(file: Path, *, document_root: Path) -> str:
    rel = file.resolve().relative_to(document_root.resolve()).as_posix()
    return "/data/local-files/?d=" + quote(rel, safe="/")


def existing_paths(ls: LabelStudio, project: int) -> set[str]:
    """``data.path`` of every task already in the project (paginated, cheap fields only)."""
    return {t["data"]["path"] for t in ls.tasks(project, include="id,data")
            if isinstance(t.get("data"), dict) and t["data"].get("path")}


# -- project and storage ---------------------------------------------------------------------
def find_project(ls: LabelStudio, title: str) -> dict | None:
    for p in ls.paginate("/api/projects", page_size=100):
        if p.get("title") == title:
            return p
    return None


def ensure_project(ls: LabelStudio, title: str, classes: Sequence[str]) -> tuple[dict, Schema, bool]:
    """Reuse the project titled ``title`` (its config must fit ``classes``) or create it."""
    project = find_project(ls, title)
    if project is None:
        project = ls.post("/api/projects", {
            "title": title, "label_config": label_config(classes),
            "description": "Labeled images; sort by Prediction score to review suspicious labels first.",
        })
        return project, parse_schema(project["label_config"]), True
    try:
        schema = parse_schema(project.get("label_config") or "")
        check_schema(schema, classes)
    except ValueError as exc:
        raise LabelStudioError(f"project {title!r} (id {project['id']}) does not fit this folder: {exc}") from None
    return project, schema, False


def ensure_local_storage(ls: LabelStudio, project: int, folder: Path) -> dict:
    """The project's Local Files import storage for ``folder``, registered if missing (never synced)."""
    folder = str(folder.resolve())
    for st in ls.get("/api/storages/localfiles", params={"project": project}) or []:
        if os.path.normpath(st.get("path") or "") == os.path.normpath(folder):
            return st
    resp = ls.request("POST", "/api/storages/localfiles", ok=(200, 201, 400), json={
        "project": project, "path": folder, "title": f"images in {folder}",
        "use_blob_urls": True, "regex_filter": ""})
    if resp.status_code == 400:
        raise LabelStudioError(
            "Label Studio refused the Local Files storage: " + _error_text(resp)
            + " (set LOCAL_FILES_SERVING_ENABLED=true and LOCAL_FILES_DOCUMENT_ROOT to a parent "
            "of the folder on the Label Studio host, or use --storage upload)")
    return resp.json()


# -- import ----------------------------------------------------------------------------------
def upload_files(ls: LabelStudio, project: int, items: Sequence[ImageItem]) -> list[str]:
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


def import_tasks(ls: LabelStudio, project: int, tasks: list[dict]) -> int:
    body = ls.post(f"/api/projects/{project}/import", tasks)
    created = int(body.get("task_count", 0))
    if created != len(tasks):
        raise LabelStudioError(f"Label Studio created {created} of {len(tasks)} tasks")
    return created


def _chunks(seq: Sequence, size: int) -> list[Sequence]:
    return [seq[i:i + size] for i in range(0, len(seq), size)]


def import_items(ls: LabelStudio, project: int, items: Sequence[ImageItem], schema: Schema, *,
                 storage: str, batch: int, document_root: Path | None = None,
                 progress: Callable[[int], None] | None = None) -> int:
    """Import ``items`` as annotated tasks in batches; returns the number of tasks created."""
    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {STORAGES}, got {storage!r}")
    if batch < 1:
        raise ValueError(f"--batch must be at least 1, got {batch}")

    if storage == "local":
        if document_root is None:
            raise ValueError("--storage local needs the document root (LOCAL_FILES_DOCUMENT_ROOT)")

        def run(chunk: Sequence[ImageItem]) -> int:
            tasks = [make_task(it, local_files_url(it.file, document_root=document_root), schema)
                     for it in chunk]
            return import_tasks(ls, project, tasks)
        chunks = _chunks(items, batch)
    else:
        def run(chunk: Sequence[ImageItem]) -> int:
            urls = upload_files(ls, project, chunk)
            return import_tasks(ls, project, [make_task(it, u, schema) for it, u in zip(chunk, urls)])
        chunks = _chunks(items, min(batch, MAX_FILES_PER_UPLOAD))

    # One request at a time: Label Studio's default SQLite database answers "database is locked"
    # to concurrent imports, and the script is not the limit (about 1% of a CPU while importing).
    done = 0
    for chunk in chunks:
        n = run(chunk)
        done += n
        if progress:
            progress(n)
    return done


# -- ML backend ------------------------------------------------------------------------------
def connect_ml_backend(ls: LabelStudio, project: int, backend_url: str, *,
                       title: str = "suspicious-labels", attempts: int = 3,
                       retry_wait: float = 2.0) -> tuple[int, list[str]]:
    """Connect the ML backend (reused when already connected) and check its webhook.

    Label Studio creates the ``<backend>/webhook`` project webhook itself; this never adds one.
    Returns the ML backend id and warnings (no webhook, or duplicates that double every event).
    """
    backend_url = backend_url.rstrip("/")
    ml = None
    for b in ls.get("/api/ml", params={"project": project}) or []:
        if (b.get("url") or "").rstrip("/") == backend_url:
            ml = b
            break
    if ml is None:
        for attempt in range(attempts):
            resp = ls.request("POST", "/api/ml", ok=(200, 201, 400), json={
                "url": backend_url, "project": project, "title": title, "is_interactive": False})
            # Label Studio gives /setup 3 s; a backend that is still warming up (loading its
            # libraries on the first project) answers in time on the next try
            if resp.status_code != 400 or "timed out" not in resp.text or attempt == attempts - 1:
                break
            time.sleep(retry_wait)
        if resp.status_code == 400:
            raise LabelStudioError(
                f"Label Studio could not connect the ML backend at {backend_url}: "
                f"{_error_text(resp)}; is the backend running and reachable from Label Studio?")
        ml = resp.json()
    hook = backend_url + "/webhook"
    hooks = [h for h in ls.get("/api/webhooks", params={"project": project}) or []
             if (h.get("url") or "").rstrip("/") == hook]
    warnings = []
    if not hooks:
        warnings.append(f"no project webhook to {hook}: annotation changes will not reach the backend")
    elif len(hooks) > 1:
        warnings.append(f"{len(hooks)} webhooks to {hook} (ids {[h['id'] for h in hooks]}): every "
                        "event is sent more than once; delete the extra ones in project Settings > Webhooks")
    return int(ml["id"]), warnings


def _error_text(resp, limit: int = 300) -> str:
    """The validation messages of a Label Studio 400 answer, as one line without HTML."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    msgs: list[str] = []

    def walk(x):
        if isinstance(x, str):
            msgs.append(x)
        elif isinstance(x, list):
            for v in x:
                walk(v)
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
    walk((body or {}).get("validation_errors") if isinstance(body, dict) else None)
    text = " ".join(msgs) or (resp.text or "")
    text = re.sub(r"<[^>]*>", "", text)
    text = re.sub(r"<[^>]*$", "", text)
    return " ".join(text.split())[:limit]


def start_training(ls: LabelStudio, ml_backend: int) -> None:
    ls.post(f"/api/ml/{ml_backend}/train", {})


# -- the whole run ---------------------------------------------------------------------------
def run_import(folder: str | os.PathLike, *, url: str, api_key: str, title: str | None = None,
               ml_backend: str | None = None, storage: str = "upload", batch: int = 500,
               document_root: str | os.PathLike | None = None, train: bool = True, show_progress: bool | None = None,
               ls: LabelStudio | None = None, echo: Callable[[str], None] = print) -> ImportSummary:
    """Import ``folder`` into the project ``title``; see the module docstring."""
    if storage not in STORAGES:
        raise ValueError(f"--storage must be one of {STORAGES}, got {storage!r}")
    suffixes = UPLOAD_SUFFIXES if storage == "upload" else IMAGE_SUFFIXES
    scan = scan_folder(folder, suffixes=suffixes)
    doc_root = None
    if storage == "local":
        doc_root = Path(document_root or os.environ.get("LOCAL_FILES_DOCUMENT_ROOT") or "")
        if not str(doc_root) or str(doc_root) == ".":
            raise ValueError("--storage local needs --document-root (Label Studio's "
                             "LOCAL_FILES_DOCUMENT_ROOT) or that environment variable")
        doc_root = doc_root.resolve()
        if doc_root not in scan.root.parents:
            raise ValueError(f"{scan.root} is not inside the document root {doc_root}")
    ls = ls or LabelStudio(url, api_key)
    ls.check()
    title = title or scan.root.name
    project, schema, created = ensure_project(ls, title, scan.classes)
    pid = int(project["id"])
    echo(f"{'created' if created else 'reusing'} project {title!r} (id {pid}), "
         f"{len(scan.classes)} classes, {len(scan.items)} images"
         + (f", skipped {len(scan.skipped)} non-image files" if scan.skipped else ""))
    if storage == "local":
        ensure_local_storage(ls, pid, scan.root)
    present = existing_paths(ls, pid)
    todo = [it for it in scan.items if it.rel not in present]
    already = len(scan.items) - len(todo)
    if already:
        echo(f"{already} images already in the project, importing the other {len(todo)}")
    imported = 0
    if todo:
        from tqdm import tqdm
        with tqdm(total=len(todo), desc=f"importing ({storage})", unit="img",
                  disable=(None if show_progress is None else not show_progress)) as bar:
            imported = import_items(ls, pid, todo, schema, storage=storage, batch=batch,
                                    document_root=doc_root, progress=bar.update)
    summary = ImportSummary(project_id=pid, project_url=f"{ls.url}/projects/{pid}/data",
                            created_project=created, found=len(scan.items),
                            skipped=len(scan.skipped), already_present=already, imported=imported)
    if ml_backend:
        summary.ml_backend_id, summary.warnings = connect_ml_backend(ls, pid, ml_backend)
        for w in summary.warnings:
            echo("warning: " + w)
        if train:
            start_training(ls, summary.ml_backend_id)
            summary.training_started = True
            echo(f"training started on the ML backend {ml_backend}")
    echo(f"imported {imported} tasks ({already} already present). Project: {summary.project_url}")
    return summary


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description="Import DIR/<class>/*.png (or DIR/train/<class>/*.png) into Label Studio as "
                    "annotated tasks, connect the ML backend and start training.")
    ap.add_argument("folder", metavar="DIR")
    ap.add_argument("--url", default=os.environ.get("LABEL_STUDIO_URL", "http://localhost:8080"),
                    help="Label Studio URL (default: $LABEL_STUDIO_URL or http://localhost:8080)")
    ap.add_argument("--api-key", default=os.environ.get("LABEL_STUDIO_API_KEY"),
                    help="legacy token or personal access token (default: $LABEL_STUDIO_API_KEY)")
    ap.add_argument("--title", help="project title (default: the folder name); reused when it exists")
    ap.add_argument("--ml-backend", metavar="URL", help="ML backend URL to connect and train")
    ap.add_argument("--storage", choices=STORAGES, default="upload",
                    help="upload the files (default) or serve them from a Local Files storage")
    ap.add_argument("--document-root", default=os.environ.get("LOCAL_FILES_DOCUMENT_ROOT"),
                    help="Label Studio's LOCAL_FILES_DOCUMENT_ROOT (for --storage local)")
    ap.add_argument("--batch", type=int, default=500, help="tasks per import request (default 500; "
                    f"uploads send at most {MAX_FILES_PER_UPLOAD} files per request)")
    ap.add_argument("--no-train", action="store_true", help="connect the backend but do not train")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run_import(args.folder, url=args.url, api_key=args.api_key or "", title=args.title,
                   ml_backend=args.ml_backend, storage=args.storage, batch=args.batch,
                   document_root=args.document_root, train=not args.no_train)
    except (ValueError, OSError) as exc:  # LabelStudioError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to import the rest", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
