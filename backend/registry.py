"""The projects a backend process serves, kept on the Flask app (no module-level state).

Worker threads start lazily, in the process that serves requests: with ``gunicorn --preload``
the app is built in the master and forked, and threads do not survive a fork. ``ensure_started``
runs before every request and starts (once per process id) a worker for every project found in
MODEL_DIR, which also re-runs jobs a previous process left unfinished.
"""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from flask import Flask

from .config import Config
from .model import SuspicionModel
from .worker import ProjectWorker

log = logging.getLogger(__name__)


class Projects:
    def __init__(self, config: Config):
        self.config = config
        self._models: dict[int, SuspicionModel] = {}
        self._lock = threading.Lock()
        self._started_pid: int | None = None
        self._ranker_cls = config.ranker_cls

    def init_app(self, app: Flask) -> None:
        """Serve ``app``: available as ``app.extensions["suspicion"]``, workers started before
        the first request of the serving process (``ensure_started``)."""
        app.extensions["suspicion"] = self
        app.before_request(self.ensure_started)

    @property
    def ranker_cls(self):
        if self._ranker_cls is None:
            from detection.pipeline import SuspicionRanker
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
            for child in sorted(root.iterdir()):
                if child.name.isdigit() and (child / "state.sqlite3").exists():
                    try:
                        self.get(int(child.name), create=False)
                    except Exception:
                        log.exception("could not open project state in %s", child)

    def get(self, project_id: int, *, create: bool = True) -> SuspicionModel | None:
        """The project's model; a project new to this backend is created when ``create``."""
        with self._lock:
            model = self._models.get(project_id)
            if model is not None:
                return model
            path = Path(self.config.model_dir) / str(project_id) / "state.sqlite3"
            if not create and not path.exists():
                return None
            model = SuspicionModel(project_id, config=self.config, ranker_cls=self.ranker_cls)
            model.worker = ProjectWorker(model)
            self._models[project_id] = model
        model.worker.start()
        return model

    def all(self) -> list[SuspicionModel]:
        with self._lock:
            return [self._models[k] for k in sorted(self._models)]

    def stop(self) -> None:
        for model in self.all():
            model.worker.stop()
            model.store.close()
