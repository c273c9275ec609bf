"""One background thread per project: training jobs, verdict batches, scoring created tasks.

A training trigger that arrives while a training job runs makes one more training afterwards
only when it came after that job started reading the project's tasks (an earlier one is covered
by the running job: pressing Start Training while the first training lists tasks trains once).
Each job is recorded in the store; a job left ``running`` by a crash is re-run on start.
"""
from __future__ import annotations

import logging
import sqlite3
import threading
import time

from .cleanup import clean_old_predictions, cleanup_due
from .feedback import apply_verdicts, score_created_tasks, verdicts_due
from .hints import process_hints
from .ls_client import LabelStudioError
from .training import PublishError, run_training

log = logging.getLogger(__name__)

#: hints taken per pass: all task hints of a large /predict go to one scoring job (one listing)
TASK_HINTS_PER_PASS = 100_000
#: longest wait between retries after consecutive failures
MAX_BACKOFF_SECONDS = 60.0
#: failures that pass by themselves: a training that meets one is queued again
PASSING_FAILURES = (LabelStudioError, OSError, sqlite3.Error)


class ProjectWorker:
    def __init__(self, model):
        self.model = model
        self._cond = threading.Condition()
        self._train = False
        self._feedback = False
        self._stop = False
        self._thread: threading.Thread | None = None
        self.state = "idle"
        self.last_error: str | None = None
        self.last_report: dict | None = None
        self.jobs_run = 0
        self._failures = 0  # consecutive failed jobs, for the back-off

    # -- triggers (called from request threads) ---------------------------------------------------
    def request_training(self) -> None:
        with self._cond:
            self._train = True
            self._cond.notify()

    def training_read_tasks(self) -> None:
        """Called by the training job when it starts listing tasks: triggers received before
        now are covered by this job."""
        with self._cond:
            self._train = False

    def force_feedback(self) -> None:
        with self._cond:
            self._feedback = True
            self._cond.notify()

    def queue_tasks(self, task_ids) -> None:
        self.model.store.add_hints("task", task_ids)
        self.poke()

    def poke(self) -> None:
        with self._cond:
            self._cond.notify()

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the thread (idempotent); re-queue a job a previous process left unfinished."""
        if self._thread and self._thread.is_alive():
            return
        for job_id, kind in self.model.store.interrupted_jobs():
            log.warning("project %s: job %s (%s) was interrupted; running it again",
                        self.model.project_id, job_id, kind)
            if kind == "train":
                self._train = True
            elif kind == "feedback":
                self._feedback = True
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name=f"project-{self.model.project_id}",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread:
            self._thread.join(timeout)

    def idle(self) -> bool:
        """True when nothing is queued or running (tests and benchmarks wait on this)."""
        store = self.model.store
        with self._cond:
            busy = self._train or self._feedback or self.state != "idle"
        return (not busy and not store.take_hints(1) and store.pending_verdicts()[0] == 0
                and not (self.model.ranker() is not None and cleanup_due(store)))

    def wait_idle(self, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.idle():
                return True
            time.sleep(0.02)
        return False

    def status(self) -> dict:
        with self._cond:
            return {"state": self.state, "training_queued": self._train, "jobs_run": self.jobs_run}

    # -- the loop -------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._stop:
                    return
                pending = self.model.store.pending_verdicts()[0] or self.model.store.take_hints(1)
                if not (self._train or self._feedback or pending):
                    self._cond.wait(timeout=2.0)
                elif pending and not (self._train or self._feedback):
                    self._cond.wait(timeout=0.1)
                if self._stop:
                    return
            try:
                self._step()
            except Exception as exc:  # never let the thread die (e.g. a full disk or read-only store)
                log.exception("project %s: worker step failed", self.model.project_id)
                self.last_error = f"worker: {type(exc).__name__}: {exc}"
                self._back_off()

    def _step(self) -> None:
        model, store, cfg = self.model, self.model.store, self.model.config
        if not model.known:
            return
        hints = store.take_hints(TASK_HINTS_PER_PASS)
        if any(kind != "task" for kind, _ in hints):
            self._run("hints", lambda: process_hints(model, hints), record=False)
            if (self.last_report or {}).get("stalled"):  # Label Studio unreachable
                self._back_off()
        task_ids = [oid for kind, oid in hints if kind == "task"]
        with self._cond:
            train, self._train = self._train, False
        if train:
            self._run("train", lambda: run_training(model))
            return
        if task_ids:
            if model.ranker() is None:
                for tid in task_ids:
                    store.drop_hint("task", tid)
                with self._cond:  # new tasks and no model yet: they may be what training lacked
                    self._train = True
            elif self._run("score_new", lambda: score_created_tasks(model, task_ids)):
                for tid in task_ids:
                    store.drop_hint("task", tid)
        with self._cond:
            forced, self._feedback = self._feedback, False
        if model.ranker() is not None and (forced or verdicts_due(
                store, batch=cfg.verdict_batch, quiet_seconds=cfg.verdict_quiet_seconds)):
            self._run("feedback", lambda: apply_verdicts(model))
        elif model.ranker() is not None and cleanup_due(store):
            self._run("cleanup", lambda: self._clean(model))

    def _clean(self, model) -> dict:
        """Older predictions out of Label Studio, giving way to any other work between steps."""
        cfg, store = model.config, model.store

        def other_work() -> bool:
            with self._cond:
                if self._train or self._feedback or self._stop:
                    return True
            return bool(store.take_hints(1)) or verdicts_due(
                store, batch=cfg.verdict_batch, quiet_seconds=cfg.verdict_quiet_seconds)
        report = clean_old_predictions(store, model.client(), model.project_id, spec=model.spec,
                                       should_stop=other_work)
        store.put("last_cleanup", report)
        log.info("project %s: cleanup %s", model.project_id, report)
        return report

    def _back_off(self) -> None:
        """Wait after consecutive failures (Label Studio down, disk full): 1 s, 2 s, ... 60 s,
        cut short by a trigger (Start Training, a webhook) or a stop."""
        self._failures += 1
        with self._cond:
            if not self._stop:
                self._cond.wait(timeout=min(MAX_BACKOFF_SECONDS, 2.0 ** (self._failures - 1)))

    def _run(self, kind: str, fn, *, record: bool = True) -> bool:
        """Run one job, recorded in the store. A training that fails for a passing reason (Label
        Studio unreachable, the disk full or read-only) is queued again after the back-off, so
        a Start Training answered "queued" never vanishes; one that fails on the data (no
        tasks, a bad label config) waits for the next trigger."""
        store = self.model.store
        job_id = None
        with self._cond:
            self.state = {"train": "training", "feedback": "applying verdicts",
                          "score_new": "scoring new tasks", "hints": "reading annotations",
                          "cleanup": "removing older predictions"}[kind]
        try:
            job_id = store.start_job(kind) if record else None
            self.last_report = fn()
            if job_id is not None:
                store.finish_job(job_id)
            self.last_error = None
            if not (self.last_report or {}).get("stalled"):
                self._failures = 0
            return True
        except Exception as exc:
            msg = f"{kind} failed: {type(exc).__name__}: {exc}"
            log.exception("project %s: %s", self.model.project_id, msg)
            self.last_error = msg
            if kind == "train" and isinstance(exc, PublishError):
                with self._cond:  # the fit is saved: publish it again, do not refit
                    self._feedback = True
            elif kind in ("train", "feedback") and isinstance(exc, PASSING_FAILURES):
                with self._cond:  # queued again after the back-off, never lost
                    if kind == "train":
                        self._train = True
                    else:
                        self._feedback = True
            try:
                if job_id is not None:
                    store.finish_job(job_id, error=msg)
            except (sqlite3.Error, OSError):
                log.exception("project %s: could not record the failure", self.model.project_id)
            self._back_off()
            return False
        finally:
            with self._cond:
                self.state = "idle"
                self.jobs_run += record
