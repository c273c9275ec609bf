"""The projects a backend process serves, kept on the Flask app (no module-level state).

Worker threads start lazily, in the process that serves requests: with ``gunicorn --preload``
the app is built in the master and forked, and threads do not survive a fork. ``ensure_started``
runs before every request and starts (once per process id) a worker for every project found in
MODEL_DIR (the most recently used ones, up to MAX_OPEN_PROJECTS), which also re-runs jobs a
previous process left unfinished.

A project new to this backend gets state (a folder, a SQLite file, a thread) only once Label
Studio confirms it exists (``confirmed``), so requests naming made-up projects cost nothing. At
most MAX_OPEN_PROJECTS projects are open at once: opening another closes the least recently used
idle one (its state stays on disk and is opened again when needed).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from flask import Flask

from .config import Config
from .errors import ApiError
from .labels import parse_label_config
from .ls_client import LabelStudioClient, LabelStudioError
from .model import SuspicionModel, label_studio_address, setup_address
from .worker import ProjectWorker

log = logging.getLogger(__name__)


class Projects:
    def __init__(self, config: Config):
        self.config = config
        self._models: dict[int, SuspicionModel] = {}
        self._lock = threading.Lock()
        self._started_pid: int | None = None
        self._ranker_cls = config.ranker_cls
        self._last_used: dict[int, float] = {}

    def init_app(self, app: Flask) -> None:
        """Serve ``app``: available as ``app.extensions["suspicion"]``, workers started before
        the first request of the serving process (``ensure_started``)."""
        app.extensions["suspicion"] = self
        app.before_request(self.ensure_started)

    @property
    def ranker_cls(self):
        if self._ranker_cls is None:
            from detection.pipeline import SuspicionRanker
            from detection.train import import_lazy_modules
            import_lazy_modules()  # not during the first training, beside the request threads
            self._ranker_cls = SuspicionRanker
        return self._ranker_cls

    def ensure_started(self) -> None:
        if self._started_pid == os.getpid():
            return
        with self._lock:
            if self._started_pid == os.getpid():
                return
            if self._started_pid is not None:  # forked child: inherited models have dead threads
                self._models = {}
            self._started_pid = os.getpid()
        root = Path(self.config.model_dir)
        if root.is_dir():
            found = [c for c in root.iterdir() if c.name.isdigit() and (c / "state.sqlite3").exists()]
            found.sort(key=lambda c: (c / "state.sqlite3").stat().st_mtime, reverse=True)
            for child in found[: self.config.max_open_projects]:
                try:
                    self.get(int(child.name), create=False)
                except Exception:
                    log.exception("could not open project state in %s", child)

    def confirmed(self, project_id: int, *, label_config=None, hostname=None,
                  access_token=None) -> SuspicionModel:
        """The project's model. A project new to this backend needs a valid ``label_config``
        (checked first) and is then looked up in Label Studio (with the address ``/setup`` would
        give it); it is created only when it exists there. Raises ``ApiError`` (422: no or a bad
        label config; 404: Label Studio has no such project; 503: it cannot be asked)."""
        model = self.get(project_id, create=False)
        if model is not None:
            return model
        if not label_config:
            raise ApiError("label config (schema) is required for a project new to this backend", 422)
        try:
            parse_label_config(label_config)
        except ValueError as exc:
            raise ApiError(str(exc), 422) from None
        setup_url, setup_token = setup_address(hostname, access_token)
        try:
            url, key = label_studio_address(self.config, setup_url=setup_url, setup_token=setup_token)
            client = LabelStudioClient(url, key, timeout=min(2.0, self.config.api_timeout))
            project = client.get_project(project_id)
        except (LabelStudioError, OSError, ValueError) as exc:
            raise ApiError(f"cannot check project {project_id} with Label Studio: {exc}", 503) from None
        if project is None:
            raise ApiError(f"Label Studio at {url} has no project {project_id} that this backend's "
                           f"key can see", 404)
        return self.get(project_id)

    def get(self, project_id: int, *, create: bool = True) -> SuspicionModel | None:
        """The project's model; a project new to this backend is created when ``create``."""
        with self._lock:
            self._last_used[project_id] = time.monotonic()
            model = self._models.get(project_id)
            if model is not None:
                return model
            path = Path(self.config.model_dir) / str(project_id) / "state.sqlite3"
            if not create and not path.exists():
                self._last_used.pop(project_id, None)
                return None
            closing = self._idle_beyond_bound()
            model = SuspicionModel(project_id, config=self.config, ranker_cls=self.ranker_cls)
            model.worker = ProjectWorker(model)
            self._models[project_id] = model
        for old in closing:
            log.info("project %s: closed (idle; at most %d projects open)", old.project_id,
                     self.config.max_open_projects)
            old.worker.stop()
            old.store.close()
        model.worker.start()
        return model

    def _idle_beyond_bound(self) -> list[SuspicionModel]:
        """Idle models to close so that one more fits the bound, least recently used first
        (called under the lock; busy projects are never closed)."""
        excess = len(self._models) + 1 - self.config.max_open_projects
        if excess <= 0:
            return []
        idle = sorted((self._last_used.get(pid, 0.0), pid) for pid, m in self._models.items()
                      if m.worker.idle())
        closing = [self._models.pop(pid) for _, pid in idle[:excess]]
        for m in closing:
            self._last_used.pop(m.project_id, None)
        return closing

    def all(self) -> list[SuspicionModel]:
        with self._lock:
            return [self._models[k] for k in sorted(self._models)]

    def stop(self) -> None:
        for model in self.all():
            model.worker.stop()
            model.store.close()
