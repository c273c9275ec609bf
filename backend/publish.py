"""Publish scores to Label Studio: bulk predictions, the project's model_version, old versions out."""
from __future__ import annotations

import logging
import math
import time
from datetime import datetime, timezone

from .labels import LabelSpec
from .store import Store

log = logging.getLogger(__name__)


def new_version(store: Store, *, method: str) -> tuple[str, int]:
    """``suspicion-<method>-<UTC timestamp>-v<N>`` with N counting up per project."""
    number = store.next_version_number()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"suspicion-{method}-{stamp}-v{number}", number


def prediction(task_id: int, *, spec: LabelSpec, score: float, predicted: int, reviewed: bool,
               version: str) -> dict:
    """One ``import/predictions`` item; reviewed tasks get score 0 (they sink in the sort)."""
    value = 0.0 if reviewed else float(score)
    if not math.isfinite(value):
        value = 0.0
    return {"task": int(task_id), "result": spec.result(int(predicted)),
            "score": min(1.0, max(0.0, value)), "model_version": version}


def publish_all(store: Store, client, project_id: int, *, spec: LabelSpec, method: str,
                kind: str, batch: int) -> dict:
    """Push every scored task under a new model_version, make it the project's version, then
    delete the predictions of older versions. Returns timings and counts."""
    t0 = time.monotonic()
    version, number = new_version(store, method=method)
    rows = store.scored_tasks()
    preds = [prediction(tid, spec=spec, score=score, predicted=pred, reviewed=bool(rev),
                        version=version) for tid, _idx, _label, score, pred, rev in rows]
    created = client.import_predictions(project_id, preds, batch=batch) if preds else 0
    t_push = time.monotonic()
    if created:
        # Accepted only once predictions of that version exist, hence after the upload.
        client.set_model_version(project_id, version)
    store.add_version(version, number=number, kind=kind, pushed=created)
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


def publish_some(client, project_id: int, rows: list[tuple], *, spec: LabelSpec, version: str,
                 batch: int) -> int:
    """Push ``(task_id, score, predicted, reviewed)`` rows under the current version (new tasks)."""
    preds = [prediction(tid, spec=spec, score=s, predicted=p, reviewed=bool(r), version=version)
             for tid, s, p, r in rows]
    return client.import_predictions(project_id, preds, batch=batch) if preds else 0
