"""Publish scores to Label Studio: bulk predictions, the project's model_version, old versions out."""
from __future__ import annotations

import logging
import math
import time
from datetime import datetime, timezone

from .labels import LabelSpec
from .reasons import class_ranks, suspect_reason
from .store import Store
from .tasks import TaskRow

log = logging.getLogger(__name__)


def published_score(row: TaskRow) -> float:
    """The score Label Studio shows for ``row``: in [0, 1]; 0 for reviewed tasks (they sink in
    the sort) and for a score that is not a finite number."""
    value = 0.0 if row.reviewed or row.score is None else float(row.score)
    return min(1.0, max(0.0, value)) if math.isfinite(value) else 0.0


def prediction(row: TaskRow, *, spec: LabelSpec, version: str, class_share: float | None = None) -> dict:
    """One ``import/predictions`` item for a scored row: the model's guess, and why the task is
    suspect when the config has the reason TextArea (``class_share``: see
    ``reasons.class_ranks``)."""
    score = published_score(row)
    result = spec.result(int(row.predicted)) + spec.reason_result(
        suspect_reason(row, spec=spec, score=score, class_share=class_share))
    return {"task": int(row.task_id), "result": result, "score": score, "model_version": version}


#: tasks pushed first, before the project switches to the new version: the top of the sort
TOP_FIRST = 1000
#: tasks whose old predictions one Data Manager action deletes: Label Studio 1.23.2 deletes a
#: prediction in about 10 ms (a signal per prediction, one transaction per action; measured
#: 46 s for 5,000 tasks, 12 s for 1,000 on a busy 2-core machine), and on SQLite a reviewer's
#: save waits for that transaction, so each one is kept to a couple of seconds
DELETE_CHUNK = 200


def publish_all(store: Store, client, project_id: int, *, spec: LabelSpec, method: str,
                kind: str, batch: int, top_first: int = TOP_FIRST,
                delete_chunk: int = DELETE_CHUNK) -> dict:
    """Push every scored task under a new model_version, the top of the new order first.

    1. the ``top_first`` highest-scored tasks get a prediction of the new version, then the
       project switches to it: the Data Manager, sorted by Prediction score, shows those tasks
       first, all with new scores (a task without a prediction of the project's version has no
       score and sorts last), while the rest follows;
    2. the rest, ``batch`` tasks at a time: their old predictions are deleted, ``delete_chunk``
       tasks per Data Manager action (a short transaction each; nothing else runs a long delete
       in Label Studio's database), then their new ones pushed;
    3. what is left of older versions (the top tasks' old predictions, tasks no longer scored)
       is deleted by version, a small delete.
    Returns timings and counts.
    """
    t0 = time.monotonic()
    version = store.begin_version(method=method, kind=kind,
                                  stamp=datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ"))
    rows = sorted(store.scored_tasks(), key=lambda r: (-published_score(r), r.task_id))
    ranks = class_ranks(rows, [published_score(r) for r in rows])

    def predictions(chunk):
        return [prediction(r, spec=spec, version=version, class_share=ranks.get(r.task_id))
                for r in chunk]
    top, rest = rows[:top_first], rows[top_first:]
    created = client.import_predictions(project_id, predictions(top), batch=batch) if top else 0
    if created:
        # Accepted only once predictions of that version exist, hence after the upload.
        client.set_model_version(project_id, version)
    store.add_version(version, pushed=created)
    t_visible = time.monotonic()
    replaced = 0
    for start in range(0, len(rest), batch):
        chunk = rest[start:start + batch]
        for sub in range(0, len(chunk), delete_chunk):
            replaced += client.delete_task_predictions(
                project_id, [r.task_id for r in chunk[sub:sub + delete_chunk]])
        created += client.import_predictions(project_id, predictions(chunk), batch=batch)
    store.set_pushed(version, created)
    t_push = time.monotonic()
    deleted = remove_old_versions(store, client, project_id)
    return {"model_version": version, "pushed": created, "top_first": len(top),
            "replaced_old": replaced, "deleted_old": deleted,
            "visible_seconds": round(t_visible - t0, 3), "push_seconds": round(t_push - t0, 3),
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
