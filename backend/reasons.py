"""Why a task is suspect, in words a reviewer reads next to the model's guess (the text of the
prediction's ``suspect_reason`` TextArea; see :mod:`backend.labels`)."""
from __future__ import annotations

from .labels import LabelSpec
from .tasks import TaskRow


def suspect_reason(row: TaskRow, *, spec: LabelSpec, score: float) -> str:
    """One line: the given label, the model's guess, the published ``score`` and what it means.

    ``score`` is the published suspiciousness in [0, 1] (0 for reviewed tasks).
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
    return (f"given {given}, {said}; suspicion {score:.3f} "
            "(1 = label most likely wrong; not the model's confidence)")
