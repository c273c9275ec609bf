"""Publish scores to Label Studio: bulk predictions, then the project's model_version (older
versions' predictions are removed afterwards by :mod:`backend.cleanup`)."""
from __future__ import annotations

import math
import time
from datetime import datetime, timezone

from .labels import LabelSpec
from .reasons import class_ranks, suspect_reason
from .store import Store
from .tasks import TaskRow


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


def sort_order(rows: list[TaskRow]) -> list[TaskRow]:
    """``rows`` in the Data Manager's order by Prediction score: highest published score first."""
    return sorted(rows, key=lambda r: (-published_score(r), r.task_id))


def version_predictions(rows: list[TaskRow], *, spec: LabelSpec, version: str):
    """A function ``chunk -> import/predictions items`` for tasks of ``rows`` (in sort order):
    the reasons name a task's rank in its class among all of ``rows``."""
    ranks = class_ranks(rows, [published_score(r) for r in rows])

    def predictions(chunk: list[TaskRow]) -> list[dict]:
        return [prediction(r, spec=spec, version=version, class_share=ranks.get(r.task_id))
                for r in chunk]
    return predictions


def publish_all(store: Store, client, project_id: int, *, spec: LabelSpec, method: str,
                kind: str, batch: int, top_first: int = TOP_FIRST) -> dict:
    """Push every scored task under a new model_version, the top of the new order first.

    1. the ``top_first`` highest-scored tasks get a prediction of the new version, then the
       project switches to it: the Data Manager, sorted by Prediction score, shows those tasks
       first, all with new scores (a task without a prediction of the project's version has no
       score and sorts last), while the rest follows;
    2. the rest, ``batch`` tasks per call, in the order of the sort (so what is in always sorts
       above what is not yet);
    3. nothing is deleted here: Label Studio deletes a prediction in about 10 ms, so deleting a
       60,000-task version first would hold every task off the new version for ten minutes.
       The tasks that still carry older predictions are recorded, and
       :func:`backend.cleanup.clean_old_predictions` removes those in short steps afterwards.
    Returns timings and counts.
    """
    t0 = time.monotonic()
    earlier = store.live_versions()
    version = store.begin_version(method=method, kind=kind,
                                  stamp=datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ"))
    rows = sort_order(store.scored_tasks())
    if earlier:  # recorded before the push: a crash mid-push still leaves them to clean
        store.mark_stale([r.task_id for r in rows])
    predictions = version_predictions(rows, spec=spec, version=version)
    top, rest = rows[:top_first], rows[top_first:]
    created = client.import_predictions(project_id, predictions(top), batch=batch) if top else 0
    if created:
        # Accepted only once predictions of that version exist, hence after the upload.
        client.set_model_version(project_id, version)
    store.add_version(version, pushed=created)
    t_visible = time.monotonic()
    for start in range(0, len(rest), batch):
        created += client.import_predictions(project_id, predictions(rest[start:start + batch]),
                                             batch=batch)
    store.set_pushed(version, created)
    return {"model_version": version, "pushed": created, "top_first": len(top),
            "tasks_with_old_predictions": len(rows) if earlier else 0,
            "visible_seconds": round(t_visible - t0, 3), "push_seconds": round(time.monotonic() - t0, 3)}


def publish_some(client, project_id: int, rows: list[TaskRow], *, spec: LabelSpec, version: str,
                 batch: int) -> int:
    """Push scored ``rows`` under the current version (tasks scored after the fit)."""
    preds = [prediction(row, spec=spec, version=version) for row in rows]
    return client.import_predictions(project_id, preds, batch=batch) if preds else 0
