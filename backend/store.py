"""Durable per-project state: one SQLite file in ``MODEL_DIR/<project_id>/state.sqlite3``.

Tables: ``meta`` (key/value: label config, model_version, counters), ``tasks`` (one row per
Label Studio task: item index in the fitted ranker, image URL, label it was ranked with, score,
predicted class, reviewed flag, the annotation the label came from; read and written as
:class:`backend.tasks.TaskRow`), ``verdicts`` (unique on task, annotation and its updated_at, so
the same event twice counts once), ``versions``, ``jobs`` (a job left ``running`` by a crash is
re-run on restart), ``hints`` (webhooks waiting to be re-read through the API) and
``stale_predictions`` (tasks that may still carry predictions of an older version in Label Studio).
"""
from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterable, Sequence

from .tasks import TaskRow, Verdict

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS tasks (
    task_id INTEGER PRIMARY KEY, item_index INTEGER, image_url TEXT, label TEXT,
    score REAL, predicted INTEGER, reviewed INTEGER NOT NULL DEFAULT 0, error TEXT,
    annotation_id INTEGER, annotated_at TEXT);
CREATE INDEX IF NOT EXISTS tasks_item ON tasks(item_index);
CREATE TABLE IF NOT EXISTS verdicts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, task_id INTEGER NOT NULL, annotation_id INTEGER NOT NULL,
    updated_at TEXT NOT NULL, label TEXT,
    applied INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL,
    UNIQUE(task_id, annotation_id, updated_at));
CREATE TABLE IF NOT EXISTS versions (
    version TEXT PRIMARY KEY, number INTEGER NOT NULL, kind TEXT, created REAL NOT NULL,
    pushed INTEGER, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, state TEXT NOT NULL,
    started REAL NOT NULL, finished REAL, error TEXT);
CREATE TABLE IF NOT EXISTS hints (
    kind TEXT NOT NULL, object_id INTEGER NOT NULL, received REAL NOT NULL,
    PRIMARY KEY(kind, object_id));
CREATE TABLE IF NOT EXISTS stale_predictions (task_id INTEGER PRIMARY KEY);
"""

_CHUNK = 500
_TASK_COLUMNS = ", ".join(TaskRow._fields)
_TASK_MARKS = ",".join("?" * len(TaskRow._fields))
#: columns added since the first release of the schema, added to older files on open
_ADDED_TASK_COLUMNS = {"annotation_id": "INTEGER", "annotated_at": "TEXT"}


def _task(row: tuple) -> TaskRow:
    """A ``SELECT {_TASK_COLUMNS}`` row as a ``TaskRow`` (``reviewed`` as a bool)."""
    return TaskRow(*row)._replace(reviewed=bool(row[TaskRow._fields.index("reviewed")]))


class Store:
    """Thread-safe access to one project's SQLite file (one connection behind a lock)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Bring a state file written by an older version to this schema."""
        with self._lock:
            task_cols = {r[1] for r in self._db.execute("PRAGMA table_info(tasks)")}
            for name, kind in _ADDED_TASK_COLUMNS.items():
                if name not in task_cols:
                    self._db.execute(f"ALTER TABLE tasks ADD COLUMN {name} {kind}")
            verdict_cols = {r[1] for r in self._db.execute("PRAGMA table_info(verdicts)")}
            if "is_fault" in verdict_cols:  # recomputed from labels on replay; never read
                self._db.execute("ALTER TABLE verdicts DROP COLUMN is_fault")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _q(self, sql: str, args: Sequence = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- meta -----------------------------------------------------------------------------------
    def get(self, key: str, default=None):
        rows = self._q("SELECT value FROM meta WHERE key=?", (key,))
        return json.loads(rows[0][0]) if rows else default

    def put(self, key: str, value) -> None:
        self._q("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, json.dumps(value)))

    # -- tasks ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _transaction(self):
        """One write transaction under the store's lock: committed, or rolled back on any error."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def replace_tasks(self, rows: Iterable[TaskRow]) -> None:
        """Replace all tasks with ``rows``, in one transaction."""
        with self._transaction() as db:
            db.execute("DELETE FROM meta WHERE key='published_version'")
            db.execute("DELETE FROM tasks")
            db.executemany(f"INSERT INTO tasks({_TASK_COLUMNS}) VALUES({_TASK_MARKS})",
                           [tuple(r) for r in rows])

    def add_tasks(self, rows: Iterable[TaskRow]) -> None:
        """Store rows of tasks scored after the fit. A task already stored with a score keeps
        its row: a training that finished meanwhile, or an earlier scoring, wins."""
        updates = ", ".join(f"{c}=excluded.{c}" for c in TaskRow._fields if c != "task_id")
        with self._transaction() as db:
            db.executemany(f"INSERT INTO tasks({_TASK_COLUMNS}) VALUES({_TASK_MARKS}) "
                           f"ON CONFLICT(task_id) DO UPDATE SET {updates} "
                           f"WHERE tasks.score IS NULL", [tuple(r) for r in rows])

    def update_scores(self, rows: Iterable[TaskRow]) -> None:
        """Write the ``score`` and ``reviewed`` of ``rows`` (other fields are left as stored)."""
        with self._transaction() as db:
            db.execute("DELETE FROM meta WHERE key='published_version'")
            db.executemany("UPDATE tasks SET score=?, reviewed=? WHERE task_id=?",
                           [(r.score, int(r.reviewed), r.task_id) for r in rows])

    def scored_tasks(self) -> list[TaskRow]:
        """Tasks with a score, by task id."""
        return [_task(r) for r in self._q(f"SELECT {_TASK_COLUMNS} FROM tasks "
                                          f"WHERE score IS NOT NULL ORDER BY task_id")]

    def all_tasks(self) -> dict[int, TaskRow]:
        """Every stored task by id."""
        return {r[0]: _task(r) for r in self._q(f"SELECT {_TASK_COLUMNS} FROM tasks")}

    def lookup(self, task_ids: Sequence[int]) -> dict[int, TaskRow]:
        """``{task_id: row}`` for the tasks among ``task_ids`` this backend knows (scored, or kept
        with an error so that an unreadable image is not fetched again on every request)."""
        out = {}
        ids = list(task_ids)
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for row in self._q(f"SELECT {_TASK_COLUMNS} FROM tasks "
                               f"WHERE task_id IN ({marks})", chunk):
                out[row[0]] = _task(row)
        return out

    def task(self, task_id: int) -> TaskRow | None:
        rows = self._q(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE task_id=?", (int(task_id),))
        return _task(rows[0]) if rows else None

    def delete_tasks(self, task_ids: Sequence[int]) -> int:
        n = 0
        for tid in task_ids:
            n += len(self._q("DELETE FROM tasks WHERE task_id=? RETURNING task_id", (int(tid),)))
            self._q("DELETE FROM verdicts WHERE task_id=?", (int(tid),))
        return n

    def counts(self) -> dict:
        rows = self._q("SELECT COUNT(*), COUNT(score), COALESCE(SUM(reviewed), 0), "
                       "COUNT(error) FROM tasks")[0]
        verdicts = self._q("SELECT COUNT(*), COALESCE(SUM(1 - applied), 0) FROM verdicts")[0]
        return {"tasks": rows[0], "scored": rows[1], "reviewed": rows[2], "unreadable": rows[3],
                "verdicts": verdicts[0], "pending_verdicts": verdicts[1]}

    # -- verdicts -------------------------------------------------------------------------------
    def add_verdict(self, verdict: Verdict) -> bool:
        """Record a verdict; False when this exact one (same annotation state) is already known."""
        rows = self._q("INSERT OR IGNORE INTO verdicts(task_id, annotation_id, updated_at, label, "
                       "created) VALUES(?,?,?,?,?) RETURNING id",
                       (int(verdict.task_id), int(verdict.annotation_id), str(verdict.updated_at),
                        verdict.label, time.time()))
        return bool(rows)

    def latest_verdicts(self) -> list[Verdict]:
        """The newest verdict per task, by task id."""
        rows = self._q("SELECT task_id, annotation_id, updated_at, label FROM verdicts v WHERE id = "
                       "(SELECT MAX(id) FROM verdicts w WHERE w.task_id = v.task_id) ORDER BY task_id")
        return [Verdict(*r) for r in rows]

    def pending_verdicts(self) -> tuple[int, float | None]:
        """Count of verdicts not yet applied and the time the newest of them arrived."""
        n, newest = self._q("SELECT COUNT(*), MAX(created) FROM verdicts WHERE applied=0")[0]
        return n, newest

    def mark_verdicts_applied(self, *, up_to_id: int | None = None) -> None:
        if up_to_id is None:
            self._q("UPDATE verdicts SET applied=1")
        else:
            self._q("UPDATE verdicts SET applied=1 WHERE id<=?", (up_to_id,))

    def max_verdict_id(self) -> int:
        return self._q("SELECT COALESCE(MAX(id), 0) FROM verdicts")[0][0]

    def delete_verdicts_of_annotations(self, annotation_ids: Sequence[int]) -> int:
        n = 0
        for aid in annotation_ids:
            n += len(self._q("DELETE FROM verdicts WHERE annotation_id=? RETURNING id", (int(aid),)))
        return n

    # -- versions -------------------------------------------------------------------------------
    def begin_version(self, *, method: str, kind: str, stamp: str) -> str:
        """Number and record a new version (state ``pushing``) before any of its predictions is
        sent, so a crash mid-push leaves a version that is cleaned up later, and no number is
        used twice. Returns ``suspicion-<method>-<stamp>-v<N>``."""
        with self._transaction() as db:
            number = db.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM versions").fetchone()[0]
            version = f"suspicion-{method}-{stamp}-v{number}"
            db.execute("INSERT INTO versions VALUES(?,?,?,?,NULL,'pushing')",
                       (version, number, kind, time.time()))
        return version

    def add_version(self, version: str, *, pushed: int) -> None:
        """Make ``version`` (recorded by ``begin_version``) the current one; the previous current
        version becomes ``old``."""
        with self._transaction() as db:
            db.execute("UPDATE versions SET state='old' WHERE state='current'")
            db.execute("UPDATE versions SET state='current', pushed=? WHERE version=?",
                       (pushed, version))
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES('model_version', ?)",
                       (json.dumps(version),))

    def set_pushed(self, version: str, pushed: int) -> None:
        """Record that every stored score is in Label Studio under ``version``."""
        with self._transaction() as db:
            db.execute("UPDATE versions SET pushed=? WHERE version=?", (int(pushed), version))
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES('published_version', ?)",
                       (json.dumps(version),))

    def published_version(self) -> str | None:
        """The current version when every stored score has been pushed under it (None while a
        push runs or after the scores changed): only then may predictions be re-imported."""
        version = self.get("published_version")
        return version if version is not None and version == self.get("model_version") else None

    def live_versions(self) -> list[str]:
        """Versions that may have predictions in Label Studio (all but the deleted ones)."""
        return [r[0] for r in self._q("SELECT version FROM versions WHERE state != 'deleted' "
                                      "ORDER BY number")]

    def old_versions(self) -> list[str]:
        """Versions whose predictions are to be deleted: replaced ones, and ones whose push never
        finished (the process died or the push failed), except the one being pushed now."""
        return [r[0] for r in self._q(
            "SELECT version FROM versions WHERE state='old' OR (state='pushing' AND number < "
            "(SELECT MAX(number) FROM versions)) ORDER BY number")]

    def mark_version_deleted(self, version: str) -> None:
        self._q("UPDATE versions SET state='deleted' WHERE version=?", (version,))

    def versions(self) -> list[dict]:
        rows = self._q("SELECT version, number, kind, created, pushed, state FROM versions "
                       "ORDER BY number DESC")
        return [dict(zip(("version", "number", "kind", "created", "pushed", "state"), r)) for r in rows]

    # -- tasks with predictions of older versions ------------------------------------------------
    def mark_stale(self, task_ids: Iterable[int]) -> None:
        with self._transaction() as db:
            db.executemany("INSERT OR IGNORE INTO stale_predictions VALUES(?)",
                           [(int(t),) for t in task_ids])

    def stale_task_ids(self) -> set[int]:
        return {r[0] for r in self._q("SELECT task_id FROM stale_predictions")}

    def has_stale(self) -> bool:
        return bool(self._q("SELECT 1 FROM stale_predictions LIMIT 1"))

    def clear_stale(self, task_ids: Iterable[int]) -> None:
        with self._transaction() as db:
            db.executemany("DELETE FROM stale_predictions WHERE task_id=?", [(int(t),) for t in task_ids])

    # -- jobs -----------------------------------------------------------------------------------
    def start_job(self, kind: str) -> int:
        return self._q("INSERT INTO jobs(kind, state, started) VALUES(?, 'running', ?) RETURNING id",
                       (kind, time.time()))[0][0]

    def finish_job(self, job_id: int, *, error: str | None = None) -> None:
        self._q("UPDATE jobs SET state=?, finished=?, error=? WHERE id=?",
                ("failed" if error else "done", time.time(), error, job_id))

    def interrupted_jobs(self) -> list[tuple[int, str]]:
        """Jobs left ``running`` (the process died); they are marked ``interrupted``."""
        rows = self._q("SELECT id, kind FROM jobs WHERE state='running'")
        self._q("UPDATE jobs SET state='interrupted', finished=? WHERE state='running'", (time.time(),))
        return rows

    def last_job(self, kind: str | None = None) -> dict | None:
        sql = "SELECT id, kind, state, started, finished, error FROM jobs"
        rows = self._q(sql + (" WHERE kind=?" if kind else "") + " ORDER BY id DESC LIMIT 1",
                       (kind,) if kind else ())
        return dict(zip(("id", "kind", "state", "started", "finished", "error"), rows[0])) if rows else None

    # -- hints ----------------------------------------------------------------------------------
    def add_hints(self, kind: str, object_ids: Iterable[int]) -> None:
        now = time.time()
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO hints VALUES(?,?,?)",
                                 [(kind, int(i), now) for i in object_ids])

    def take_hints(self, limit: int = 1000) -> list[tuple[str, int]]:
        return self._q("SELECT kind, object_id FROM hints ORDER BY received LIMIT ?", (limit,))

    def drop_hint(self, kind: str, object_id: int) -> None:
        self._q("DELETE FROM hints WHERE kind=? AND object_id=?", (kind, int(object_id)))
