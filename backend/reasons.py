"""Why a task is suspect, in words a reviewer reads next to the model's guess (the text of the
prediction's ``suspect_reason`` TextArea; see :mod:`backend.labels`)."""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Sequence

from .labels import LabelSpec
from .tasks import TaskRow


def class_ranks(rows: Sequence[TaskRow], scores: Sequence[float]) -> dict[int, float]:
    """``{task_id: share}``: the share of the tasks with the same label that are at least as
    suspicious (``scores[i]`` is row i's published score); 1/n for the most suspicious of n."""
    by_label: dict = defaultdict(list)
    for row, score in zip(rows, scores):
        if row.label is not None:
            by_label[row.label].append((score, row.task_id))
    out = {}
    for members in by_label.values():
        members.sort(key=lambda m: -m[0])
        n = len(members)
        for pos, (_, tid) in enumerate(members, start=1):
            out[tid] = pos / n
    return out


def _top_share(share: float) -> str:
    pct = share * 100
    return f"{math.ceil(pct)}%" if pct >= 1 else f"{max(0.1, math.ceil(pct * 10) / 10):g}%"


def suspect_reason(row: TaskRow, *, spec: LabelSpec, score: float,
                   class_share: float | None = None) -> str:
    """One line: the given label, the model's guess, where the task stands in its class, the
    published ``score`` and what it means.

    ``score`` is the published suspiciousness in [0, 1] (0 for reviewed tasks); ``class_share``
    (see ``class_ranks``) the share of its class at least as suspicious, when known.
    """
    if row.reviewed:
        return "reviewed: the reviewer's label stands (score 0, sorted last)"
    given = row.label if row.label is not None else "no label"
    guess = (spec.choices[int(row.predicted)]
             if row.predicted is not None and 0 <= int(row.predicted) < len(spec.choices) else None)
    if guess is None:
        said = "no guess from the model"
    elif guess == row.label:
        said = f"model also says {guess}, but the image is unlike most of its class"
    else:
        said = f"model says {guess}"
    where = (f"; in the top {_top_share(class_share)} of class {given}"
             if class_share is not None and row.label is not None else "")
    return (f"given {given}, {said}{where}; suspicion {score:.3f} "
            "(1 = label most likely wrong; not the model's confidence)")
