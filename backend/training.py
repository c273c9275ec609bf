"""The training job: pull labeled tasks, download images, fit the ranker, store scores, publish."""
from __future__ import annotations

import logging
import shutil
import time

import numpy as np

from .images import decode_all, fetch_all
from .labels import LabelSpec
from .publish import publish_all

log = logging.getLogger(__name__)


def newest_label(task: dict, spec: LabelSpec) -> tuple[str | None, int | None]:
    """Label of the newest non-cancelled annotation that has a choice, and its id."""
    best = None
    for ann in task.get("annotations") or []:
        if not isinstance(ann, dict) or ann.get("was_cancelled"):
            continue
        label = spec.label_of(ann.get("result"))
        if label is None:
            continue
        key = (str(ann.get("updated_at") or ""), int(ann.get("id") or 0))
        if best is None or key > best[0]:
            best = (key, label, ann.get("id"))
    return (best[1], best[2]) if best else (None, None)


def run_training(model) -> dict:
    """Fit a new ranker on every labeled task of the project and publish its scores.

    Tasks whose image is missing or unreadable are kept with an error and no score; unlabeled
    tasks get the model's predicted class and score 0. Verdicts recorded so far are replayed.
    """
    t0 = time.monotonic()
    cfg, spec, store = model.config, model.spec, model.store
    client = model.client()
    tasks = list(client.iter_tasks(model.project_id))
    t_list = time.monotonic()
    rows, fetch_idx, urls = {}, [], []
    for task in tasks:
        tid = int(task["id"])
        url = spec.image_url(task)
        label, _ = newest_label(task, spec)
        if label is not None and label not in spec.choices:
            rows[tid] = (tid, None, url, label, None, None, 0, f"label {label!r} is not a choice")
            continue
        if url is None:
            rows[tid] = (tid, None, None, label, None, None, 0,
                         f"task has no image in data[{spec.image_key!r}]")
            continue
        rows[tid] = (tid, None, url, label, None, None, 0, None)
        fetch_idx.append(tid)
        urls.append(url)
    if not tasks:
        raise ValueError(f"project {model.project_id} has no tasks yet: import labeled images, "
                         f"then press Start Training")
    if not urls:
        raise ValueError(f"none of the {len(tasks)} tasks has an image in data[{spec.image_key!r}]")
    blobs = fetch_all(client, urls, workers=cfg.download_workers)
    t_fetch = time.monotonic()
    x, errors, channels = decode_all(blobs)
    readable = [tid for tid, err in zip(fetch_idx, errors) if err is None]
    for tid, err in zip(fetch_idx, errors):
        if err is not None:
            rows[tid] = rows[tid][:7] + (err,)
    labeled_pos = [i for i, tid in enumerate(readable) if rows[tid][3] is not None]
    unlabeled_pos = [i for i, tid in enumerate(readable) if rows[tid][3] is None]
    if len(labeled_pos) < 2:
        raise ValueError(f"only {len(labeled_pos)} labeled task(s) with a readable image; "
                         f"need at least 2 to train")
    y = np.array([spec.choices.index(rows[readable[i]][3]) for i in labeled_pos], dtype=np.int64)
    ranker = model.ranker_cls.fit(x[labeled_pos], y, num_classes=len(spec.choices),
                                  method=cfg.detection_method, seed=cfg.seed, epochs=cfg.train_epochs)
    t_fit = time.monotonic()
    save_base(model, ranker)
    item_of = {}
    for item, pos in enumerate(labeled_pos):
        tid = readable[pos]
        item_of[tid] = item
        rows[tid] = (tid, item, rows[tid][2], rows[tid][3], float(ranker.scores[item]),
                     int(ranker.predicted[item]), 0, None)
    if unlabeled_pos:
        _, pred = ranker.score_new(x[unlabeled_pos], np.zeros(len(unlabeled_pos), dtype=np.int64))
        for pos, p in zip(unlabeled_pos, pred):
            tid = readable[pos]
            rows[tid] = (tid, None, rows[tid][2], None, 0.0, int(p), 0, None)
    store.replace_tasks(rows.values())
    store.put("channels", int(channels))
    store.put("num_items", len(labeled_pos))
    scores = replay_verdicts(model, ranker)
    model.set_ranker(ranker)
    upto = store.max_verdict_id()
    report = publish_all(store, client, model.project_id, spec=spec, method=cfg.detection_method,
                         kind="train", batch=cfg.push_batch)
    store.mark_verdicts_applied(up_to_id=upto)
    report.update(tasks=len(tasks), labeled=len(labeled_pos), unlabeled=len(unlabeled_pos),
                  unreadable=sum(e is not None for e in errors), replayed_verdicts=scores,
                  list_seconds=round(t_list - t0, 3), download_seconds=round(t_fetch - t_list, 3),
                  fit_seconds=round(t_fit - t_fetch, 3), seconds=round(time.monotonic() - t0, 3))
    store.put("last_training", report)
    log.info("project %s: trained %s", model.project_id, report)
    return report


def save_base(model, ranker) -> None:
    """Save the freshly fitted ranker (before any verdict) atomically to ``<dir>/ranker``."""
    final = model.directory / "ranker"
    tmp = model.directory / "ranker.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    ranker.save(tmp)
    old = model.directory / "ranker.old"
    if final.exists():
        if old.exists():
            shutil.rmtree(old)
        final.rename(old)
    tmp.rename(final)
    if old.exists():
        shutil.rmtree(old)


def replay_verdicts(model, ranker, *, write: bool = True) -> int:
    """Apply every stored verdict to ``ranker`` and write scores and reviewed flags to the store.

    Returns how many verdicts reached the ranker (tasks outside the fitted set only sink).
    """
    store = model.store
    verdicts = store.latest_verdicts()
    reviewed = {tid for tid, _, _ in verdicts}
    rows = store.scored_tasks()
    item_of = {tid: idx for tid, idx, *_ in rows if idx is not None}
    ranked_label = {tid: label for tid, _idx, label, *_ in rows}
    # A fault is a reviewer's label that differs from the label the ranker was fitted with:
    # after a retrain on the corrected label, the same verdict counts as clean.
    pairs = [(item_of[tid], (label != ranked_label[tid]) if label is not None else fault)
             for tid, label, fault in verdicts if tid in item_of]
    if pairs:
        scores = ranker.update([p[0] for p in pairs], [p[1] for p in pairs])
    else:
        scores = ranker.scores
    if not write:
        return len(pairs)
    scores = np.asarray(scores, dtype=np.float64)
    updates = []
    for tid, idx, _label, score, _pred, _rev in rows:
        new = float(scores[idx]) if idx is not None else score
        updates.append((new, int(tid in reviewed), tid))
    store.update_scores(updates)
    return len(pairs)
