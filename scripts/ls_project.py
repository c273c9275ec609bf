"""The Label Studio side of a folder import: the project, its Local Files storage, the ML backend,
the Data Manager view reviewers open.

Each call reuses what already exists (a project with the title, a storage for the folder, the
backend connected to the project, the review view) and creates only what is missing.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import NamedTuple, Sequence

from backend.labels import LabelSpec, label_config, parse_label_config
from backend.ls_client import LabelStudioClient, LabelStudioError

DESCRIPTION = ("Labeled images; the tab \"Most suspicious first\" lists them by Prediction "
               "score, likely wrong labels on top.")
#: the Data Manager tab the import creates: Prediction score shown, highest first
REVIEW_VIEW_TITLE = "Most suspicious first"
SCORE_COLUMN = "tasks:predictions_score"


class Project(NamedTuple):
    """A Label Studio project the import writes to, and the label config it has."""

    id: int
    spec: LabelSpec
    created: bool


def find_project(ls: LabelStudioClient, title: str) -> dict | None:
    """The first project titled ``title``, or None."""
    for p in ls.paginate("/api/projects", page_size=100):
        if p.get("title") == title:
            return p
    return None


def ensure_project(ls: LabelStudioClient, title: str, classes: Sequence[str]) -> Project:
    """Reuse the project titled ``title`` (its config must have every class as a choice; extra
    choices are fine) or create it with one choice per class."""
    project = find_project(ls, title)
    if project is None:
        project = ls.post("/api/projects", {"title": title, "label_config": label_config(classes),
                                            "description": DESCRIPTION})
        return Project(int(project["id"]), parse_label_config(project["label_config"]), True)
    try:
        spec = parse_label_config(project.get("label_config") or "")
    except ValueError as exc:
        raise ValueError(f"project {title!r} (id {project['id']}) does not fit this folder: "
                         f"{exc}") from None
    missing = spec.missing(classes)
    if missing:
        raise ValueError(
            f"project {title!r} (id {project['id']}) does not fit this folder: its label config "
            f"lacks the choices {missing} (it has {list(spec.choices)}); use another --title or "
            "add these choices in Label Studio")
    return Project(int(project["id"]), spec, False)


def ensure_local_storage(ls: LabelStudioClient, project: int, folder: Path) -> dict:
    """The project's Local Files import storage for ``folder``, registered if missing (never synced:
    a sync would create tasks without annotations)."""
    folder = str(folder.resolve())
    for st in ls.get("/api/storages/localfiles", params={"project": project}) or []:
        if os.path.normpath(st.get("path") or "") == os.path.normpath(folder):
            return st
    resp = ls.request("POST", "/api/storages/localfiles", expect=(200, 201, 400), json={
        "project": project, "path": folder, "title": f"images in {folder}",
        "use_blob_urls": True, "regex_filter": ""})
    if resp.status_code == 400:
        raise LabelStudioError(
            "Label Studio refused the Local Files storage: " + error_text(resp)
            + " (set LOCAL_FILES_SERVING_ENABLED=true and LOCAL_FILES_DOCUMENT_ROOT to a parent "
            "of the folder on the Label Studio host, or use --storage upload)")
    return resp.json()


def connect_ml_backend(ls: LabelStudioClient, project: int, backend_url: str, *,
                       title: str = "suspicious-labels", attempts: int = 3,
                       retry_wait: float = 2.0) -> tuple[int, list[str]]:
    """Connect the ML backend (reused when already connected) and check its webhook.

    Label Studio creates the ``<backend>/webhook`` project webhook itself; this never adds one.
    Returns the ML backend id and warnings (no webhook, or duplicates that double every event).
    """
    backend_url = backend_url.rstrip("/")
    ml = next((b for b in ls.get("/api/ml", params={"project": project}) or []
               if (b.get("url") or "").rstrip("/") == backend_url), None)
    if ml is None:
        for attempt in range(attempts):
            resp = ls.request("POST", "/api/ml", expect=(200, 201, 400), json={
                "url": backend_url, "project": project, "title": title, "is_interactive": False})
            # Label Studio gives /setup 3 s; a backend that is still warming up (loading its
            # libraries on the first project) answers in time on the next try
            if resp.status_code != 400 or "timed out" not in resp.text or attempt == attempts - 1:
                break
            time.sleep(retry_wait)
        if resp.status_code == 400:
            raise LabelStudioError(
                f"Label Studio could not connect the ML backend at {backend_url}: "
                f"{error_text(resp)}; is the backend running and reachable from Label Studio?")
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


def start_training(ls: LabelStudioClient, ml_backend: int) -> None:
    """Press Start Training: Label Studio posts START_TRAINING to the backend."""
    ls.post(f"/api/ml/{ml_backend}/train", {})


def ensure_review_view(ls: LabelStudioClient, project: int, *,
                       title: str = REVIEW_VIEW_TITLE) -> dict:
    """The project's Data Manager tab ``title`` (created when missing): the Prediction score
    column shown and the tasks ordered by it, highest (most suspicious) first.

    Label Studio 1.23.2 stores a tab's columns as the *hidden* ones; a tab without that list
    hides the columns whose ``visibility_defaults`` say so (Prediction score among them), hence
    the list here is those defaults less the score column.
    """
    for view in ls.get("/api/dm/views", params={"project": project}) or []:
        if (view.get("data") or {}).get("title") == title:
            return view
    columns = ls.get("/api/dm/columns", params={"project": project}) or {}
    hidden: dict[str, list[str]] = {"explore": [], "labeling": []}
    for col in columns.get("columns") or []:
        if col.get("children"):
            continue  # a group (``data``): its children are columns
        path = f"{col['parent']}.{col['id']}" if col.get("parent") else col["id"]
        cid = f"{col.get('target', 'tasks')}:{path}"
        for where, visible in (col.get("visibility_defaults") or {}).items():
            if not visible and cid != SCORE_COLUMN:
                hidden.setdefault(where, []).append(cid)
    return ls.post("/api/dm/views", {"project": project, "data": {
        "title": title, "type": "list", "target": "tasks", "filters": {"conjunction": "and", "items": []},
        "ordering": ["-" + SCORE_COLUMN], "hiddenColumns": hidden}})


def error_text(resp, limit: int = 300) -> str:
    """The validation messages of a Label Studio 400 answer, as one line without HTML."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    msgs: list[str] = []

    def walk(x):
        if isinstance(x, str):
            msgs.append(x)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)
        elif isinstance(x, dict):
            walk(list(x.values()))
    walk(body.get("validation_errors") if isinstance(body, dict) else None)
    text = " ".join(msgs) or (resp.text or "")
    text = re.sub(r"<[^>]*>?", "", text)
    return " ".join(text.split())[:limit]
