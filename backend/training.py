"""The training job: pull labeled tasks, download images, fit the ranker, store scores, publish."""
from __future__ import annotations

import logging
import shutil
import time
from typing import Iterable

import numpy as np

from .decoded import DecodedImages
from .hints import saved_verdict
from .images import load_images
from .listing import list_project, remember
from .ls_client import LabelStudioError
from .publish import publish_all
from .tasks import TaskRow, class_indices, replay_verdicts

log = logging.getLogger(__name__)


class PublishError(LabelStudioError):
    """A training fitted and saved its ranker, and Label Studio refused or did not take its
    predictions: the worker publishes again (as a feedback pass) instead of training again."""


def run_training(model) -> dict:
    """Fit a new ranker on every labeled task of the project and publish its scores.

    Tasks whose image is missing or unreadable, or whose label is not a choice, are kept with an
    error and no score; unlabeled tasks get the model's predicted class and score 0. Verdicts
    recorded so far are replayed.
    """
    t0 = time.monotonic()
    cfg, spec, store = model.config, model.spec, model.store
    client = model.client()
    if model.worker is not None:
        model.worker.training_read_tasks()
    label_config = store.get("label_config")
    listing = list_project(client, model.project_id, spec=spec, store=store, label_config=label_config)
    t_list = time.monotonic()
    if not listing.rows:
        raise ValueError(f"project {model.project_id} has no tasks yet: import labeled images, "
                         f"then press Start Training")
    rows = {r.task_id: r for r in listing.rows}
    recovered = reconcile_verdicts(store, rows.values(), previous=listing.previous)
    to_fetch = [r for r in rows.values() if r.error is None]
    if not to_fetch:
        raise ValueError(f"none of the {len(rows)} tasks has an image in data[{spec.image_key!r}] "
                         f"and a label among the config's choices")
    images = load_images([r.image_url for r in to_fetch], source=model.image_source(),
                         workers=cfg.download_workers, max_pixels=cfg.max_image_pixels,
                         decoded=DecodedImages(model.directory) if cfg.image_cache_bytes else None)
    t_fetch = time.monotonic()
    x, channels = images.x, images.channels
    readable = []
    for row, err in zip(to_fetch, images.errors):
        if err is not None:
            rows[row.task_id] = row._replace(error=err)
        else:
            readable.append(row)
    labeled_pos = [i for i, r in enumerate(readable) if r.label is not None]
    unlabeled_pos = [i for i, r in enumerate(readable) if r.label is None]
    if len(labeled_pos) < 2:
        raise ValueError(f"only {len(labeled_pos)} labeled task(s) with a readable image; "
                         f"need at least 2 to train")
    y = class_indices([readable[i] for i in labeled_pos], spec)
    ranker = model.ranker_cls.fit(x[labeled_pos], y, num_classes=len(spec.choices),
                                  method=cfg.detection_method, seed=cfg.seed, epochs=cfg.train_epochs,
                                  device=cfg.device)
    t_fit = time.monotonic()
    save_base(model, ranker)
    for item, pos in enumerate(labeled_pos):
        row = readable[pos]
        rows[row.task_id] = row._replace(item_index=item, score=float(ranker.scores[item]),
                                         predicted=int(ranker.predicted[item]))
    if unlabeled_pos:
        _, pred = ranker.score_new(x[unlabeled_pos], np.zeros(len(unlabeled_pos), dtype=np.int64))
        for pos, p in zip(unlabeled_pos, pred):
            row = readable[pos]
            rows[row.task_id] = row._replace(score=0.0, predicted=int(p))
    verdicts = store.latest_verdicts()
    scored, replayed = replay_verdicts(ranker, list(rows.values()), verdicts)
    store.replace_tasks(scored)
    remember(store, listing, label_config=label_config)
    store.put("channels", int(channels))
    store.put("num_items", len(labeled_pos))
    model.set_ranker(ranker)
    upto = store.max_verdict_id()
    try:
        report = publish_all(store, client, model.project_id, spec=spec, method=cfg.detection_method,
                             kind="train", batch=cfg.push_batch)
    except (LabelStudioError, OSError) as exc:  # the fit is saved: publish again, do not refit
        raise PublishError(f"the new ranking is fitted and saved, but publishing it failed: {exc}") from exc
    store.mark_verdicts_applied(up_to_id=upto)
    report.update(tasks=len(rows), listing="full" if listing.full else "changed",
                  listed=listing.read, labeled=len(labeled_pos), unlabeled=len(unlabeled_pos),
                  unreadable=sum(r.error is not None for r in rows.values()),
                  replayed_verdicts=replayed, recovered_verdicts=recovered, images=images.sources,
                  list_seconds=round(t_list - t0, 3), download_seconds=round(t_fetch - t_list, 3),
                  fit_seconds=round(t_fit - t_fetch, 3), seconds=round(time.monotonic() - t0, 3))
    store.put("last_training", report)
    log.info("project %s: trained %s", model.project_id, report)
    return report


def reconcile_verdicts(store, listed: Iterable[TaskRow], *, previous: dict[int, TaskRow]) -> int:
    """Record as verdicts the reviewers' saves seen in a fresh task listing: a task whose newest
    annotation is a save made after the one the previous ranker was trained on. Label Studio is
    the source of truth, so a webhook lost (a 500, a restart, a full disk) is recovered here,
    and a forged one never mattered. ``previous``: the stored rows before the listing, by task
    id. Returns how many verdicts were new."""
    added = 0
    for row in listed:
        old = previous.get(row.task_id)
        if old is None or old.annotation_id is None:
            continue  # no record of what the previous ranker was trained on
        verdict = saved_verdict(old, annotation_id=row.annotation_id, label=row.label,
                                updated_at=row.annotated_at or "")
        if verdict is not None:
            added += store.add_verdict(verdict)
    return added


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


def replay_stored_verdicts(model, ranker) -> int:
    """Apply every stored verdict to ``ranker`` and write the scores and reviewed flags to the
    store. Returns how many verdicts reached the ranker (tasks outside the fitted set only sink)."""
    store = model.store
    scored, reached = replay_verdicts(ranker, store.scored_tasks(), store.latest_verdicts())
    store.update_scores(scored)
    return reached
