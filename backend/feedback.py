"""Reviewer feedback: batches of verdicts (made from annotations re-read through the API by
:mod:`backend.hints`) refit the ranker and publish a new model_version; tasks created after the
fit are scored with the current ranker."""
from __future__ import annotations

import logging
import time

from .images import load_images
from .ls_client import LabelStudioError
from .publish import publish_all, publish_some
from .tasks import TaskRow, class_indices, read_tasks
from .training import replay_stored_verdicts

log = logging.getLogger(__name__)


def verdicts_due(store, *, batch: int, quiet_seconds: float, now: float | None = None) -> bool:
    n, newest = store.pending_verdicts()
    if n == 0:
        return False
    now = time.time() if now is None else now
    return n >= batch or now - newest >= quiet_seconds


def apply_verdicts(model) -> dict:
    """Reload the base ranker, replay every verdict, store the new scores, publish them."""
    store = model.store
    upto = store.max_verdict_id()
    ranker = model.ranker_cls.load(model.directory / "ranker")
    t0 = time.monotonic()
    used = replay_stored_verdicts(model, ranker)
    model.set_ranker(ranker)
    refit = time.monotonic() - t0
    report = publish_all(store, model.client(), model.project_id, spec=model.spec,
                         method=model.config.detection_method, kind="feedback",
                         batch=model.config.push_batch)
    store.mark_verdicts_applied(up_to_id=upto)
    meta = getattr(ranker, "meta", None)
    report.update(verdicts=used, refit_seconds=round(refit, 3),
                  refit_validation=dict(getattr(meta, "validation", None) or {}))
    store.put("last_feedback", report)
    log.info("project %s: applied verdicts %s", model.project_id, report)
    return report


def score_tasks(model, tasks: list[dict]) -> list[TaskRow]:
    """Score tasks the ranker has not seen (labels from their newest annotation) and store them.

    Returns the rows of the scored ones; tasks that cannot be ranked (no readable image, a label
    that is not a choice) are stored with an error and left out.
    """
    store = model.store
    ranker = model.ranker()
    if ranker is None or not tasks:
        return []
    rows = read_tasks(tasks, model.spec)
    done = [r for r in rows if r.error is not None]
    ok = [r for r in rows if r.error is None]
    try:
        images = load_images([r.image_url for r in ok], source=model.image_source(),
                             workers=model.config.download_workers, channels=store.get("channels"),
                             max_pixels=model.config.max_image_pixels)
        x, errors = images.x, images.errors
    except ValueError as exc:
        errors, x = [str(exc)] * len(ok), None
    readable = [r for r, err in zip(ok, errors) if err is None]
    done += [r._replace(error=err) for r, err in zip(ok, errors) if err is not None]
    scored = []
    if readable:
        labeled = [r if r.label is not None else r._replace(label=model.spec.choices[0])
                   for r in readable]
        with model.ranker_lock:
            scores, predicted = ranker.score_new(x, class_indices(labeled, model.spec))
        scored = [r._replace(score=float(s) if r.label is not None else 0.0, predicted=int(p))
                  for r, s, p in zip(readable, scores, predicted)]
    store.add_tasks(done + scored)
    return scored


def score_created_tasks(model, task_ids: list[int]) -> dict:
    """TASKS_CREATED: re-read the tasks through the API, score them, push under the current
    model_version (Label Studio has no prediction of that version for them yet)."""
    client = model.client()
    wanted = set(task_ids)
    if len(wanted) > 200:
        tasks = [t for t in client.iter_tasks(model.project_id) if int(t["id"]) in wanted]
    else:
        tasks = []
        for tid in sorted(wanted):
            task = client.get_task(tid)
            if task is None:
                log.info("project %s: task %s no longer exists, skipped", model.project_id, tid)
            else:
                tasks.append(task)
    # only what Label Studio confirms: tasks of this project that this backend has not scored
    # (a forged TASKS_CREATED for known tasks would otherwise reset their reviewed state)
    scored = model.store.lookup([int(t["id"]) for t in tasks])
    tasks = [t for t in tasks if t.get("project", model.project_id) == model.project_id
             and (int(t["id"]) not in scored or scored[int(t["id"])].score is None)]
    rows = score_tasks(model, tasks)
    pushed = 0
    if rows and model.model_version:
        pushed = publish_some(client, model.project_id, rows, spec=model.spec,
                              version=model.model_version, batch=model.config.push_batch)
    return {"scored": len(rows), "pushed": pushed}
