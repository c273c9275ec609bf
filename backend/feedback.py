"""Reviewer feedback: webhooks are hints; the annotation is re-read through the API, compared
with the label the task was ranked with (changed -> fault, unchanged -> clean), and batches of
verdicts refit the ranker and publish a new model_version."""
from __future__ import annotations

import logging
import time

import numpy as np

from .images import decode_all, fetch_all
from .ls_client import LabelStudioError
from .publish import publish_all, publish_some
from .training import newest_label, replay_verdicts

log = logging.getLogger(__name__)


def process_annotation_hints(model, *, limit: int = 1000) -> dict:
    """Turn queued ANNOTATION_CREATED/UPDATED hints into verdicts. A hint whose re-read fails
    for a network reason stays queued; one that does not make a verdict is dropped."""
    store, spec = model.store, model.spec
    added = dropped = 0
    stalled = False
    for kind, aid in store.take_hints(limit):
        if kind != "annotation":
            continue
        try:
            ann = model.client().get_annotation(aid)
        except (LabelStudioError, OSError) as exc:
            log.warning("project %s: re-reading annotation %s failed: %s", model.project_id, aid, exc)
            stalled = True
            break
        verdict = _verdict_from(ann, model.project_id, store, spec)
        if verdict is not None and store.add_verdict(**verdict):
            added += 1
        else:
            dropped += 1
        store.drop_hint(kind, aid)
    return {"verdicts_added": added, "hints_dropped": dropped, "stalled": stalled}


def _verdict_from(ann: dict | None, project_id: int, store, spec) -> dict | None:
    if not isinstance(ann, dict) or ann.get("was_cancelled"):
        return None
    project = ann.get("project")
    if project is not None and int(project) != project_id:
        return None
    task_id = ann.get("task")
    row = store.task(task_id) if isinstance(task_id, int) else None
    if row is None or row[1] is None or row[2] is None:
        return None  # not a task the ranker has scored with a label
    label = spec.label_of(ann.get("result"))
    if label is None:
        return None
    return {"task_id": task_id, "annotation_id": int(ann["id"]),
            "updated_at": str(ann.get("updated_at") or ann.get("created_at") or ""),
            "label": label, "is_fault": label != row[1]}


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
    used = replay_verdicts(model, ranker)
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


def score_tasks(model, tasks: list[dict]) -> list[tuple]:
    """Score tasks the ranker has not seen (labels from their newest annotation) and store them.

    Returns ``(task_id, score, predicted, reviewed)`` rows for the scored ones; tasks without a
    readable image are stored with an error and left out.
    """
    spec, store = model.spec, model.store
    ranker = model.ranker()
    if ranker is None or not tasks:
        return []
    channels = store.get("channels")
    rows, out, urls, ok = [], [], [], []
    for task in tasks:
        tid = int(task["id"])
        url = spec.image_url(task)
        label, _ = newest_label(task, spec)
        if label is not None and label not in spec.choices:
            label = None
        if url is None:
            rows.append((tid, None, None, label, None, None, 0, "task has no image"))
            continue
        urls.append(url)
        ok.append((tid, url, label))
    blobs = fetch_all(model.client(), urls, workers=model.config.download_workers)
    try:
        x, errors, _ = decode_all(blobs, channels=channels)
    except ValueError as exc:
        errors, x = [str(exc)] * len(ok), None
    readable = [item for item, err in zip(ok, errors) if err is None]
    for item, err in zip(ok, errors):
        if err is not None:
            rows.append((item[0], None, item[1], item[2], None, None, 0, err))
    if readable:
        y = np.array([spec.choices.index(lbl) if lbl else 0 for _, _, lbl in readable], dtype=np.int64)
        with model.ranker_lock:
            scores, predicted = ranker.score_new(x, y)
        for (tid, url, lbl), s, p in zip(readable, scores, predicted):
            score = float(s) if lbl is not None else 0.0
            rows.append((tid, None, url, lbl, score, int(p), 0, None))
            out.append((tid, score, int(p), 0))
    store.upsert_tasks(rows)
    return out


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
            try:
                tasks.append(client.get_task(tid))
            except LabelStudioError as exc:
                log.info("project %s: task %s not readable (%s), skipped", model.project_id, tid, exc)
    tasks = [t for t in tasks if int(t.get("project", model.project_id)) == model.project_id]
    rows = score_tasks(model, tasks)
    pushed = 0
    if rows and model.model_version:
        pushed = publish_some(client, model.project_id, rows, spec=model.spec,
                              version=model.model_version, batch=model.config.push_batch)
    return {"scored": len(rows), "pushed": pushed}
