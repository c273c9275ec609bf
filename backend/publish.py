"""Publish scores to Label Studio: bulk predictions, the project's model_version, old versions out."""
from __future__ import annotations

import logging
import math
import time
from datetime import datetime, timezone

from .labels import LabelSpec
from .store import Store
from .tasks import TaskRow

log = logging.getLogger(__name__)


def published_score(row: TaskRow) -> float:
    """The score Label Studio shows for ``row``: in [0, 1]; 0 for reviewed tasks (they sink in
    the sort) and for a score that is not a finite number."""
    value = 0.0 if row.reviewed or row.score is None else float(row.score)
    return min(1.0, max(0.0, value)) if math.isfinite(value) else 0.0


def prediction(row: TaskRow, *, spec: LabelSpec, version: str) -> dict:
    """One ``import/predictions`` item for a scored row."""
    return {"task": int(row.task_id), "result": spec.result(int(row.predicted)),
            "score": published_score(row), "model_version": version}


def publish_all(store: Store, client, project_id: int, *, spec: LabelSpec, method: str,
                kind: str, batch: int) -> dict:
    """Push every scored task under a new model_version, make it the project's version, then
    delete the predictions of older versions. Returns timings and counts."""
    t0 = time.monotonic()
    version = store.begin_version(method=method, kind=kind,
                                  stamp=datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ"))
    preds = [prediction(row, spec=spec, version=version) for row in store.scored_tasks()]
    created = client.import_predictions(project_id, preds, batch=batch) if preds else 0
    t_push = time.monotonic()
    if created:
        # Accepted only once predictions of that version exist, hence after the upload.
        client.set_model_version(project_id, version)
    store.add_version(version, kind=kind, pushed=created)
    t_visible = time.monotonic()
    deleted = remove_old_versions(store, client, project_id)
    return {"model_version": version, "pushed": created, "deleted_old": deleted,
            "push_seconds": round(t_push - t0, 3), "visible_seconds": round(t_visible - t0, 3),
            "total_seconds": round(time.monotonic() - t0, 3)}


def remove_old_versions(store: Store, client, project_id: int) -> int:
    deleted = 0
    for old in store.old_versions():
        try:
            deleted += client.delete_model_version(project_id, old)
            store.mark_version_deleted(old)
        except Exception as exc:  # left for the next publish; not worth failing the job
            log.warning("project %s: could not delete predictions of %s: %s", project_id, old, exc)
    return deleted


def publish_some(client, project_id: int, rows: list[TaskRow], *, spec: LabelSpec, version: str,
                 batch: int) -> int:
    """Push scored ``rows`` under the current version (tasks scored after the fit)."""
    preds = [prediction(row, spec=spec, version=version) for row in rows]
    return client.import_predictions(project_id, preds, batch=batch) if preds else 0
