"""The task vocabulary: what the backend knows of one Label Studio task, and how a Label Studio
task object becomes that.

``TaskRow`` is the one shape every store read returns and every store write takes. ``read_tasks``
is the one place that turns Label Studio task objects into rows, with one rule for a label that
is not one of the config's choices (the task is kept with an error, never trained on or scored).
``replay_verdicts`` applies the stored reviewer verdicts to a ranker.
"""
from __future__ import annotations

from typing import Iterable, NamedTuple, Sequence

import numpy as np

from .labels import LabelSpec


class TaskRow(NamedTuple):
    """One Label Studio task as the backend stores it.

    ``item_index``: position in the fitted ranker (None for tasks outside it: unlabeled,
    unreadable, or scored after the fit). ``label``: the label the task was ranked with.
    ``annotation_id`` / ``annotated_at``: the annotation that label came from and its
    ``updated_at``. ``error``: why the task has no score (no image, unreadable, label not a
    choice), else None.
    """

    task_id: int
    image_url: str | None
    label: str | None
    annotation_id: int | None = None
    annotated_at: str | None = None
    item_index: int | None = None
    score: float | None = None
    predicted: int | None = None
    reviewed: bool = False
    error: str | None = None


class NewestLabel(NamedTuple):
    """The label of a task's newest usable annotation, with that annotation's id and time."""

    label: str | None
    annotation_id: int | None
    updated_at: str | None


class Verdict(NamedTuple):
    """A reviewer's newest saved label for a task (compared with ``TaskRow.label`` on replay)."""

    task_id: int
    annotation_id: int
    updated_at: str
    label: str


NO_LABEL = NewestLabel(None, None, None)


def newest_label(task: dict, spec: LabelSpec) -> NewestLabel:
    """Label of the newest non-cancelled annotation that has a choice for ``spec``'s Choices."""
    best, best_key = NO_LABEL, None
    for ann in task.get("annotations") or []:
        if not isinstance(ann, dict) or ann.get("was_cancelled"):
            continue
        label = spec.label_of(ann.get("result"))
        if label is None:
            continue
        updated = str(ann.get("updated_at") or ann.get("created_at") or "")
        aid = ann.get("id") if isinstance(ann.get("id"), int) else None
        key = (updated, aid or 0)
        if best_key is None or key > best_key:
            best, best_key = NewestLabel(label, aid, updated), key
    return best


def read_task(task: dict, spec: LabelSpec) -> TaskRow:
    """A Label Studio task object as a row without a score (an error row when it cannot be
    ranked). ``task`` needs an integer ``id``."""
    tid = int(task["id"])
    url = spec.image_url(task)
    label, aid, updated = newest_label(task, spec)
    return checked(TaskRow(task_id=tid, image_url=url, label=label, annotation_id=aid,
                           annotated_at=updated), spec)


def checked(row: TaskRow, spec: LabelSpec) -> TaskRow:
    """``row`` as a listing gives it: its task, image URL and annotation only (no score, no
    reviewed flag), with an error when it cannot be ranked (a label outside the choices, no image).
    The one rule for both a task object read now and a row stored by an earlier listing."""
    row = TaskRow(task_id=row.task_id, image_url=row.image_url, label=row.label,
                  annotation_id=row.annotation_id, annotated_at=row.annotated_at)
    if row.label is not None and row.label not in spec.choices:
        return row._replace(error=f"label {row.label!r} is not one of the label config's choices")
    if row.image_url is None:
        return row._replace(error=f"task has no image in data[{spec.image_key!r}]")
    return row


def read_tasks(tasks: Iterable[dict], spec: LabelSpec) -> list[TaskRow]:
    """``read_task`` for each task, in order."""
    return [read_task(task, spec) for task in tasks]


def class_indices(rows: Sequence[TaskRow], spec: LabelSpec) -> np.ndarray:
    """``(N,) int64`` class index of each row's label (rows must be labeled with a choice)."""
    return np.array([spec.choices.index(r.label) for r in rows], dtype=np.int64)


def is_fault(verdict: Verdict, row: TaskRow) -> bool:
    """A fault is a reviewer's label that differs from the label the ranker was fitted with:
    after a retrain on the corrected label, the same verdict counts as clean."""
    return verdict.label != row.label


def replay_verdicts(ranker, rows: Sequence[TaskRow], verdicts: Sequence[Verdict]
                    ) -> tuple[list[TaskRow], int]:
    """Apply ``verdicts`` to ``ranker`` (its ``update``) and give every row its new score.

    Returns ``(rows with score and reviewed set, verdicts that reached the ranker)``: rows with an
    ``item_index`` take the ranker's score; others keep theirs. Reviewed rows are those with a
    verdict (they sink in the sort when published).
    """
    by_task = {r.task_id: r for r in rows}
    reached = [(by_task[v.task_id].item_index, is_fault(v, by_task[v.task_id]))
               for v in verdicts
               if v.task_id in by_task and by_task[v.task_id].item_index is not None]
    if reached:
        scores = ranker.update([i for i, _ in reached], [f for _, f in reached])
    else:
        scores = ranker.scores
    scores = np.asarray(scores, dtype=np.float64)
    reviewed = {v.task_id for v in verdicts}
    out = [r._replace(score=float(scores[r.item_index]) if r.item_index is not None else r.score,
                      reviewed=r.task_id in reviewed) for r in rows]
    return out, len(reached)
