"""Import a labeled image folder into Label Studio, connect the ML backend, start training.

    python scripts/import_folder.py DIR --url URL --api-key KEY [--title T] [--ml-backend URL]
        [--storage upload|local] [--batch N]

``DIR`` holds ``DIR/<class>/*.png`` or ``DIR/train/<class>/*.png`` (MNIST/CIFAR-style exports).
Every image becomes a task whose annotation is its folder's class; ``data.path`` keeps the path
relative to ``DIR`` so that a second run imports only what is missing. The project gets a Data
Manager tab "Most suspicious first" (Prediction score shown, highest first), which the printed
project URL opens.

Storage modes (see ``scripts/ls_import.py``): ``upload`` (default) sends the files to Label
Studio; ``local`` serves them from a Local Files storage: the folder must be on the Label Studio
host under ``LOCAL_FILES_DOCUMENT_ROOT``, with ``LOCAL_FILES_SERVING_ENABLED=true``.

The folder is listed by ``detection.data.list_folder`` (hidden files and folders are not part of
the data set); the label config is built and read by ``backend.labels``; the project, storage
and ML backend are handled by ``scripts/ls_project.py``.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image, UnidentifiedImageError  # noqa: E402

from backend.ls_client import LabelStudioClient, LabelStudioError  # noqa: E402
from detection.data import IMAGE_SUFFIXES, list_folder  # noqa: E402
from scripts.ls_import import (MAX_FILES_PER_UPLOAD, STORAGES, ImageItem,  # noqa: E402
                               existing_paths, import_items)
from scripts.ls_project import (REVIEW_VIEW_TITLE, connect_ml_backend,  # noqa: E402
                                ensure_local_storage, ensure_project, ensure_review_view,
                                start_training)

#: image types Label Studio accepts for upload (its SUPPORTED_EXTENSIONS) and that we read
UPLOAD_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"})


@dataclass
class FolderScan:
    """The images of a folder to import; ``skipped``: files that are not images we can send."""

    root: Path
    classes: list[str]
    items: list[ImageItem]
    skipped: list[str] = field(default_factory=list)


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
    view_id: int | None = None
    training_started: bool = False
    warnings: list[str] = field(default_factory=list)


def scan_folder(root: str | os.PathLike, *, suffixes: Iterable[str] = IMAGE_SUFFIXES) -> FolderScan:
    """The images of ``root/<class>/**`` (or ``root/train/<class>/**``) with their folder's class.

    Files with another suffix and files PIL cannot identify are counted in ``skipped`` (hidden
    ones are not listed at all). ``ValueError`` for a missing folder, fewer than two class
    folders, or no image.
    """
    root = Path(root).resolve()
    listing = list_folder(root, suffixes=suffixes)
    items, skipped = [], [f.relative_to(root).as_posix() for f in listing.other]
    for f, label in listing.files:
        rel = f.relative_to(root).as_posix()
        if _is_image(f):
            items.append(ImageItem(file=f, rel=rel, label=listing.classes[label]))
        else:
            skipped.append(rel)
    if not items:
        raise ValueError(f"none of the {len(listing.files)} image files under {listing.base} "
                         "could be read")
    return FolderScan(root=root, classes=listing.classes, items=items, skipped=sorted(skipped))


def _is_image(path: Path) -> bool:
    try:
        with Image.open(path) as img:
            return bool(img.format)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return False


def _document_root(document_root: str | os.PathLike | None, folder: Path) -> Path:
    """The Local Files document root, which must be a parent of ``folder``."""
    root = Path(document_root or os.environ.get("LOCAL_FILES_DOCUMENT_ROOT") or "")
    if not str(root) or str(root) == ".":
        raise ValueError("--storage local needs --document-root (Label Studio's "
                         "LOCAL_FILES_DOCUMENT_ROOT) or that environment variable")
    root = root.resolve()
    if root not in folder.parents:
        raise ValueError(f"{folder} is not inside the document root {root}")
    return root


# -- the whole run ---------------------------------------------------------------------------
def run_import(folder: str | os.PathLike, *, url: str, api_key: str, title: str | None = None,
               ml_backend: str | None = None, storage: str = "upload", batch: int = 500,
               document_root: str | os.PathLike | None = None, train: bool = True, show_progress: bool | None = None,
               ls: LabelStudioClient | None = None,
               echo: Callable[[str], None] = print) -> ImportSummary:
    """Import ``folder`` into the project ``title``; see the module docstring."""
    if storage not in STORAGES:
        raise ValueError(f"--storage must be one of {STORAGES}, got {storage!r}")
    suffixes = UPLOAD_SUFFIXES if storage == "upload" else IMAGE_SUFFIXES
    scan = scan_folder(folder, suffixes=suffixes)
    doc_root = _document_root(document_root, scan.root) if storage == "local" else None
    ls = ls or LabelStudioClient(url, api_key, timeout=120.0)
    ls.check()
    title = title or scan.root.name
    project = ensure_project(ls, title, scan.classes)
    pid, created = project.id, project.created
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
            imported = import_items(ls, pid, todo, project.spec, storage=storage, batch=batch,
                                    document_root=doc_root, progress=bar.update)
    view = ensure_review_view(ls, pid)
    summary = ImportSummary(project_id=pid, project_url=f"{ls.url}/projects/{pid}/data?tab={view['id']}",
                            created_project=created, found=len(scan.items),
                            skipped=len(scan.skipped), already_present=already, imported=imported,
                            view_id=int(view["id"]))
    if ml_backend:
        summary.ml_backend_id, summary.warnings = connect_ml_backend(ls, pid, ml_backend)
        for w in summary.warnings:
            echo("warning: " + w)
        if train:
            start_training(ls, summary.ml_backend_id)
            summary.training_started = True
            echo(f"training started on the ML backend {ml_backend}")
    echo(f"imported {imported} tasks ({already} already present). Project: {summary.project_url} "
         f"(tab {REVIEW_VIEW_TITLE!r}: Prediction score, most suspicious first)")
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
    except (ValueError, OSError, LabelStudioError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to import the rest", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
