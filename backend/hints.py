"""Webhooks are hints, never facts: Label Studio sends them without credentials, so each one is
queued and re-read through the API by the project's worker.

- ``annotation`` (ANNOTATION_CREATED/UPDATED): the annotation as Label Studio has it becomes a
  verdict only when it is a reviewer's save made after the annotation the ranker was trained on
  (another annotation id, or the same one updated later). The untouched original annotation,
  named by a forged webhook, changes nothing.
- ``annotation_deleted`` / ``task_deleted``: acted on only when Label Studio answers 404 for it.

A hint whose re-read fails for a network reason stays queued (the pass stops and is retried);
one that does not make a change is dropped.
"""
from __future__ import annotations

import logging
from datetime import datetime

from .ls_client import LabelStudioError
from .tasks import TaskRow, Verdict

log = logging.getLogger(__name__)

def process_hints(model, hints) -> dict:
    """Re-read the annotation and deletion ``hints`` (``(kind, object_id)`` as the store's
    ``take_hints`` gives them; ``task`` hints are scored elsewhere and skipped here).
    Returns counts and ``stalled`` (Label Studio could not be read; hints stay queued)."""
    store = model.store
    report = {"verdicts_added": 0, "verdicts_forgotten": 0, "tasks_forgotten": 0,
              "hints_dropped": 0, "stalled": False}
    for kind, object_id in hints:
        if kind == "task":
            continue
        try:
            changed = _HANDLERS[kind](model, object_id)
        except (LabelStudioError, OSError) as exc:
            log.warning("project %s: re-reading %s %s failed: %s", model.project_id, kind,
                        object_id, exc)
            report["stalled"] = True
            break
        report[changed] += 1
        store.drop_hint(kind, object_id)
    if report["verdicts_forgotten"] and model.worker is not None:
        model.worker.force_feedback()
    return report


def _annotation(model, annotation_id: int) -> str:
    ann = model.client().get_annotation(annotation_id)
    verdict = verdict_from_annotation(ann, project_id=model.project_id, store=model.store,
                                      spec=model.spec)
    if verdict is not None and model.store.add_verdict(verdict):
        return "verdicts_added"
    return "hints_dropped"


def _annotation_deleted(model, annotation_id: int) -> str:
    if model.client().get_annotation(annotation_id) is not None:
        return "hints_dropped"  # Label Studio still has it: a forged or stale deletion
    return "verdicts_forgotten" if model.store.delete_verdicts_of_annotations([annotation_id]) \
        else "hints_dropped"


def _task_deleted(model, task_id: int) -> str:
    if model.client().get_task(task_id) is not None:
        return "hints_dropped"
    return "tasks_forgotten" if model.store.delete_tasks([task_id]) else "hints_dropped"


_HANDLERS = {"annotation": _annotation, "annotation_deleted": _annotation_deleted,
             "task_deleted": _task_deleted}


def verdict_from_annotation(ann: dict | None, *, project_id: int, store, spec) -> Verdict | None:
    """The verdict an annotation read from Label Studio makes, or None (cancelled, another
    project, a task the ranker has not scored with a label, no choice, or not a save made after
    the annotation the ranker was trained on)."""
    if not isinstance(ann, dict) or ann.get("was_cancelled") or not isinstance(ann.get("id"), int):
        return None
    project = ann.get("project")
    if project is not None and project != project_id:
        return None
    task_id = ann.get("task")
    row = store.task(task_id) if isinstance(task_id, int) and not isinstance(task_id, bool) else None
    return saved_verdict(row, annotation_id=ann["id"], label=spec.label_of(ann.get("result")),
                         updated_at=str(ann.get("updated_at") or ann.get("created_at") or ""))


def saved_verdict(row: TaskRow | None, *, annotation_id: int | None, label: str | None,
                  updated_at: str) -> Verdict | None:
    """The verdict a reviewer's saved annotation (``annotation_id``, its choice ``label``, its
    ``updated_at``) makes on the stored ``row``, or None: the task is not one the ranker scored
    with a label, the annotation has no choice, or it is no save made after the annotation the
    ranker was trained on. The one rule for webhooks re-read and for a training's listing."""
    if row is None or row.label is None or row.score is None or label is None or annotation_id is None:
        return None
    if not is_newer_save(row, annotation_id=annotation_id, updated_at=updated_at):
        return None
    return Verdict(task_id=row.task_id, annotation_id=annotation_id, updated_at=updated_at, label=label)


def is_newer_save(row: TaskRow, *, annotation_id: int, updated_at: str) -> bool:
    """True when (``annotation_id``, ``updated_at``) is a save made after the annotation the
    ranker was trained on. Rows without that record (state from an older backend) accept any."""
    if row.annotation_id is None or not row.annotated_at:
        return True
    if annotation_id == row.annotation_id and updated_at == row.annotated_at:
        return False
    try:
        new, old = datetime.fromisoformat(updated_at), datetime.fromisoformat(row.annotated_at)
        later, same = new > old, new == old
    except (ValueError, TypeError):  # not ISO 8601, or one with a time zone and one without
        later, same = updated_at > row.annotated_at, updated_at == row.annotated_at
    return later or (same and annotation_id != row.annotation_id)
