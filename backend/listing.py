"""What a training lists: every task of the project with its newest annotation, read whole from
Label Studio the first time and, on a retrain, only the tasks changed since the previous listing.

A whole listing (the export snapshot, :meth:`LabelStudioClient.list_tasks_for_training`) takes
2.6 ms a task when Label Studio has nothing else to do (157 s at 60,000 on PostgreSQL,
benchmark/listing-60k-pg.json; 150 s on SQLite while the scale benchmark ran), more while
reviewers save (391 s on PostgreSQL beside two saves a second); a retrain after a review round
has a few hundred changed. Label Studio 1.23.2 moves a task's ``updated_at`` when the task or one
of its annotations is created, changed or deleted (not on prediction imports or deletes:
measured), and Django sets it when it saves, inside the request. So the rows stored by the
previous training, with the tasks whose ``updated_at`` is after that listing's start on Label
Studio's clock minus :data:`GAP` read again, are the project as it is now, except for tasks
deleted or created in a transaction still open then; both change the count, and when the merged
rows are not exactly the project's ``task_number`` the listing is made whole. It is also whole
when there are no stored rows, the label config changed, the previous listing left no mark, more
than :data:`RELIST_FRACTION` of the tasks changed (the task API then costs more than the
snapshot: 8.4 against 2.6 ms a task at 10,000 on SQLite, benchmark/listing.json; 6.5 against 2.6
at 60,000 on PostgreSQL), and at least every :data:`WHOLE_EVERY` seconds.
"""
from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import NamedTuple

from .ls_client import parse_time
from .tasks import TaskRow, checked, read_tasks

log = logging.getLogger(__name__)

#: a change saved up to this long before a listing started but committed after it is still seen
#: by the next listing. Label Studio 1.23.2 sets ``updated_at`` in the saving request; what can
#: hold that request's commit back is a wait on SQLite's lock (5 s, then "database is locked" and
#: its middleware runs the whole request again, with a new ``updated_at``) and its webhooks (1 s
#: each by default). Tasks created in a transaction open longer are caught by the count.
GAP = timedelta(seconds=15)
#: above this fraction of the stored tasks changed, a whole listing is faster
RELIST_FRACTION = 0.25
#: a whole listing at least this often (a deleted task and a created one in the same window
#: would leave the count unchanged)
WHOLE_EVERY = 24 * 3600.0
#: store keys: the next listing's "changed since", the label config this one was read with,
#: when the last whole listing was made
MARK_KEY, CONFIG_KEY, WHOLE_KEY = "listed_since", "listed_label_config", "listed_whole_at"


class Listing(NamedTuple):
    """``rows``: every task as a listing gives it (no scores), by task id. ``read``: how many task
    objects Label Studio sent. ``full``: read whole (else only the changed tasks). ``since``: the
    next listing reads the tasks changed after this (None: it must be whole). ``why_full``: why
    a whole listing was made (None for a listing of changes). ``previous``: the rows stored
    before this listing, by task id (what the previous ranker was trained on)."""

    rows: list[TaskRow]
    read: int
    full: bool
    since: str | None
    why_full: str | None
    previous: dict[int, TaskRow]


def list_project(client, project_id: int, *, spec, store, label_config: str | None,
                 gap: timedelta = GAP) -> Listing:
    """The project's tasks as rows (see the module docstring for when a listing is whole)."""
    start = client.count_tasks(project_id).server_time
    since = parse_time(store.get(MARK_KEY))
    why, stored = _why_whole(store, label_config=label_config, since=since), store.all_tasks()
    if why is None:
        changed_count = client.count_changed_tasks(project_id, since=since)
        if changed_count is None or changed_count > RELIST_FRACTION * max(1, len(stored)):
            why = f"{changed_count} of {len(stored)} tasks changed since the previous listing"
    if why is None:
        changed = client.list_changed_tasks(project_id, since=since)
        count = client.count_tasks(project_id).tasks
        merged = {tid: checked(row, spec) for tid, row in stored.items()}
        for row in read_tasks(changed, spec):
            merged[row.task_id] = row
        if count == len(merged):
            log.info("project %s: listed %d task(s) changed since %s, %d in all", project_id,
                     len(changed), since.isoformat(), len(merged))
            return Listing(rows=[merged[t] for t in sorted(merged)], read=len(changed), full=False,
                           since=_mark(start, changed, gap=gap, previous=since), why_full=None,
                           previous=stored)
        why = f"{len(merged)} tasks known and changed, Label Studio counts {count}"
    tasks = client.list_tasks_for_training(project_id)
    rows = {r.task_id: r for r in read_tasks(tasks, spec)}
    log.info("project %s: listed all %d tasks (%s)", project_id, len(tasks), why)
    return Listing(rows=[rows[t] for t in sorted(rows)], read=len(tasks), full=True,
                   since=_mark(start, tasks, gap=gap), why_full=why, previous=stored)


def remember(store, listing: Listing, *, label_config: str | None) -> None:
    """Keep ``listing``'s mark for the next one. Call after its rows are stored: a crash between
    the two lists again from the older mark, and never skips a change."""
    store.put(MARK_KEY, listing.since)
    store.put(CONFIG_KEY, label_config)
    if listing.full:
        store.put(WHOLE_KEY, time.time())


def _why_whole(store, *, label_config: str | None, since) -> str | None:
    if since is None:
        return "no previous listing"
    if store.get(CONFIG_KEY) != label_config:
        return "the label config changed"
    if time.time() - float(store.get(WHOLE_KEY) or 0) > WHOLE_EVERY:
        return f"the last whole listing is over {WHOLE_EVERY / 3600:.0f} h old"
    return None


def _mark(start, tasks: list[dict], *, gap: timedelta, previous=None) -> str | None:
    """Where the next listing starts: this one's start on Label Studio's clock minus ``gap``. When
    Label Studio gave no clock: the newest ``updated_at`` listed minus ``gap`` (no later than the
    start), or ``previous`` when nothing was listed; None when a task has no ``updated_at`` (the
    next listing is then whole)."""
    if start is None:
        stamps = [parse_time(t.get("updated_at")) for t in tasks]
        if any(s is None for s in stamps) or not (stamps or previous):
            return None
        if not stamps:
            return previous.isoformat()
        start = max(stamps)
    return (start - gap).isoformat()
