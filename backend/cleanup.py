"""Remove older versions' predictions from Label Studio after a publish, in short steps.

Label Studio 1.23.2 deletes predictions only in ways that touch every prediction (a signal per
prediction, about 10 ms each): ``DELETE .../model-versions/`` removes a whole version in one
transaction (10 minutes at 60,000 tasks, with a reviewer's save on SQLite failing after 5 s of
waiting), and the Data Manager's "Delete predictions" action removes *every* prediction of the
selected tasks, the current version's too. So the cleanup takes a few tasks at a time (at most
``chunk``, fewer when Label Studio is slow: a step should take about ``STEP_SECONDS``), deletes
their predictions and imports their current one again: a transaction of a second or two, after
which the tasks are back in the sort with the same score. It starts at the bottom of the
sort and leaves the top ``top_first`` tasks alone, so what a reviewer looks at never moves; the
older versions' rows left on those tasks are deleted by version once few remain (a task leaves
the top when it is reviewed). It stops between steps as soon as other work is waiting (a
training, a verdict batch, webhooks) and resumes from the store on the next idle moment or after
a restart: the tasks still to do are recorded in the store. It does not start while reviewers'
verdicts wait to be applied (see :func:`cleanup_due`).

The Data Manager action would also delete predictions the backend did not make (another model's,
or imported pre-annotations). When the project holds any, the cleanup never uses it: it deletes
the backend's older versions by version instead, one long transaction each.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

from .labels import LabelSpec
from .publish import TOP_FIRST, sort_order, version_predictions
from .store import Store

log = logging.getLogger(__name__)

#: most tasks per step: deleting their predictions (two each, about 10 ms apiece) and
#: re-importing one each keeps Label Studio's transaction to a couple of seconds
CLEAN_CHUNK = 100
#: what a step should take: later steps are sized from the seconds per task the previous one
#: took (between SMALLEST_STEP and the chunk), so that work arriving meanwhile (a verdict batch)
#: waits about this long for the step in flight. At 60,000 tasks on PostgreSQL a 100-task step
#: took 9.5-12 s (2026-12-02): each deleted prediction costs Label Studio a task save.
STEP_SECONDS = 2.0
SMALLEST_STEP = 10
STEP_KEY = "cleanup_step_tasks"  # store key: the step size the last step measured


def step_size(seconds: float, tasks: int, *, target: float = STEP_SECONDS, largest: int = CLEAN_CHUNK,
              smallest: int = SMALLEST_STEP) -> int:
    """Tasks for the next step after one of ``tasks`` tasks took ``seconds``."""
    per_task = max(seconds, 1e-6) / max(tasks, 1)
    return _within(target / per_task, smallest=smallest, largest=largest)


def _within(tasks: float, *, smallest: int, largest: int) -> int:
    """``tasks`` held between ``smallest`` (or ``largest``, when that is less) and ``largest``."""
    return int(min(largest, max(min(smallest, largest), tasks)))


def cleanup_due(store: Store) -> bool:
    """True when the current version is fully pushed, older predictions may be left, no pass
    has yet been made after it, and no reviewer's verdict waits to be applied.

    While verdicts wait, a reviewer is at work and a verdict batch will publish a new version
    soon: a task cleaned now would be cleaned again after it (three deletions instead of two),
    and a pass restarted after each save (each webhook stops it) sorts every task again each
    time, Python work that held the backend's other threads (at 60,000 tasks, 40 restarts during
    200 saves; ``/health`` p99 129 ms then, 12 ms in the retrain's publish and cleanup)."""
    version = store.published_version()
    return (version is not None and store.get("cleaned_version") != version
            and store.pending_verdicts()[0] == 0
            and (store.has_stale() or bool(store.old_versions())))


def clean_old_predictions(store: Store, client, project_id: int, *, spec: LabelSpec,
                          top_first: int = TOP_FIRST, chunk: int = CLEAN_CHUNK,
                          step_seconds: float = STEP_SECONDS, smallest: int = SMALLEST_STEP,
                          should_stop: Callable[[], bool] = lambda: False,
                          clock: Callable[[], float] = time.monotonic) -> dict:
    """One cleanup pass (see the module); returns counts, ``stopped`` when it gave way to other
    work before the end. Steps hold at most ``chunk`` tasks, fewer when a step takes longer than
    ``step_seconds`` (see :func:`step_size`); the report's ``seconds`` and the steps are timed
    with ``clock``. Label Studio's errors propagate: the tasks not done stay recorded."""
    t0 = clock()
    version = store.published_version()
    report = {"model_version": version, "tasks_cleaned": 0, "deleted": 0, "versions_deleted": 0,
              "steps": 0, "stopped": False}
    if version is None:
        return report
    counts = client.model_versions(project_id)
    ours = {v["version"] for v in store.versions()}
    foreign = sorted(v for v, n in counts.items() if n and v not in ours)
    if foreign:  # the task-wise delete would take them too: only whole versions of ours go
        report.update(foreign_versions=foreign,
                      versions_deleted=delete_small_versions(store, client, project_id, limit=None))
        store.put("cleaned_version", version)
        report["seconds"] = round(clock() - t0, 3)
        return report
    rows = sort_order(store.scored_tasks())
    stale = store.stale_task_ids()
    scored = {r.task_id for r in rows}
    orphans = sorted(stale - scored)  # no score any more (e.g. its image became unreadable)
    todo = [r for r in reversed(rows[top_first:]) if r.task_id in stale]
    predictions = version_predictions(rows, spec=spec, version=version)
    queue = [(tid, None) for tid in orphans] + [(r.task_id, r) for r in todo]  # orphans: delete only
    stored = store.get(STEP_KEY)  # the next pass starts at the size measured last
    size, start = _within(int(stored or chunk), smallest=smallest, largest=chunk), 0
    while start < len(queue):
        if report["steps"] and should_stop():
            report.update(stopped=True, seconds=round(clock() - t0, 3))
            return report
        part = queue[start:start + size]
        ids, again = [tid for tid, _ in part], [r for _, r in part if r is not None]
        t_step = clock()
        report["deleted"] += client.delete_task_predictions(project_id, ids)
        if again:
            client.import_predictions(project_id, predictions(again), batch=len(again))
        store.clear_stale(ids)
        report["tasks_cleaned"] += len(ids)
        report["steps"] += 1
        start += len(part)
        size = step_size(clock() - t_step, len(ids), target=step_seconds, largest=chunk, smallest=smallest)
        if size != stored:  # one write when the size changes, not one a step
            store.put(STEP_KEY, size)
            stored = size
    report["versions_deleted"] = delete_small_versions(store, client, project_id, limit=chunk)
    store.put("cleaned_version", version)
    report.update(left_on_top=len(store.stale_task_ids()), seconds=round(clock() - t0, 3))
    return report


def delete_small_versions(store: Store, client, project_id: int, *, limit: int | None) -> int:
    """Delete by version the older versions with at most ``limit`` predictions left (a short
    transaction; ``None``: every older version); a version with none left is marked deleted.
    Returns how many went."""
    counts = client.model_versions(project_id)
    limit = float("inf") if limit is None else limit
    gone = 0
    for old in store.old_versions():
        left = counts.get(old) or 0
        if left > limit:
            continue
        if left:
            client.delete_model_version(project_id, old)
        store.mark_version_deleted(old)
        gone += 1
    if not any((counts.get(v) or 0) > limit for v in store.old_versions()):
        store.clear_stale(store.stale_task_ids())  # no older prediction is left anywhere
    return gone
