"""The per-project model, in the shape of label-studio-ml's model class: ``setup``,
``predict(tasks, context)``, ``fit(event, data)`` and ``model_version``.

Heavy work (training, verdict batches, scoring created tasks) never runs here: ``fit`` and the
first ``setup`` only queue it for the project's worker thread.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path

from .config import Config
from .image_cache import ImageCache
from .images import ImageSource
from .labels import LabelSpec, parse_label_config
from .ls_client import LabelStudioClient, LabelStudioError
from .media import MediaReader
from .publish import published_score
from .store import Store
from .tasks import TaskRow, is_fault, replay_verdicts

log = logging.getLogger(__name__)

ANNOTATION_EVENTS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED")


#: Label Studio's project ids are database ids; anything past a 32-bit id is not one of them
MAX_PROJECT_ID = 2**31 - 1
_PROJECT_ID = re.compile(r"([0-9]{1,10})(?:\.[0-9]{1,20})?")


def parse_project_id(value) -> int:
    """Label Studio sends ``"<id>.<timestamp>"`` to /setup and /predict, an object with ``id``
    in webhooks, sometimes a bare int. Only ASCII digits, ids 1 to 2**31 - 1. Raises
    ``ValueError`` for anything else."""
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, bool):
        raise ValueError("project must be an id, not a boolean")
    if isinstance(value, int):
        pid = value
    elif isinstance(value, str) and (match := _PROJECT_ID.fullmatch(value)):
        pid = int(match.group(1))
    else:
        raise ValueError(f"project must be an id like \"1.1795607766\" or {{\"id\": 1}}, "
                         f"got {str(value)[:40]!r}")
    if not 1 <= pid <= MAX_PROJECT_ID:
        raise ValueError(f"project id must be between 1 and {MAX_PROJECT_ID}, got {str(pid)[:40]}")
    return pid


def label_studio_address(config: Config, *, setup_url: str | None,
                         setup_token: str | None) -> tuple[str, str]:
    """``(url, key)`` to reach Label Studio: LABEL_STUDIO_URL with the configured key (or the
    token /setup sent), else the URL and the token of one /setup together. Raises
    ``LabelStudioError`` when neither is known."""
    if config.label_studio_url:
        url, key = config.label_studio_url, config.label_studio_api_key or setup_token
    else:
        url, key = setup_url, setup_token
    if not url or not key:
        raise LabelStudioError("Label Studio is not reachable: set LABEL_STUDIO_URL and "
                               "LABEL_STUDIO_API_KEY (or wait for /setup to provide them)")
    return url, key


def setup_address(hostname, access_token) -> tuple[str | None, str | None]:
    """The Label Studio URL and token a /setup body gives (a URL only with http(s)://)."""
    if not (isinstance(hostname, str) and hostname.startswith(("http://", "https://"))):
        return None, None
    return hostname.rstrip("/"), access_token if isinstance(access_token, str) and access_token else None


class SuspicionModel:
    """State and protocol operations of one Label Studio project."""

    def __init__(self, project_id: int, *, config: Config, ranker_cls):
        self.project_id = int(project_id)
        self.config = config
        self.ranker_cls = ranker_cls
        self.directory = Path(config.model_dir) / str(self.project_id)
        self.store = Store(self.directory / "state.sqlite3")
        self.ranker_lock = threading.Lock()
        self.worker = None  # set by the registry
        self._ranker = None
        self._ranker_loaded = False
        self.load_error: str | None = None  # why the saved ranker could not be loaded
        self._setup_url: str | None = None
        self._setup_token: str | None = None
        self._client: LabelStudioClient | None = None
        self._client_for: tuple[str, str] | None = None  # (url, key) the client was made with
        self._image_cache: ImageCache | None = None
        self._media: MediaReader | None = None
        self._spec: LabelSpec | None = None
        config_xml = self.store.get("label_config")
        if config_xml:
            self._spec = parse_label_config(config_xml)

    # -- protocol -------------------------------------------------------------------------------
    @property
    def model_version(self) -> str | None:
        return self.store.get("model_version")

    @property
    def spec(self) -> LabelSpec:
        if self._spec is None:
            raise ValueError(f"project {self.project_id} has no label config yet (call /setup)")
        return self._spec

    @property
    def known(self) -> bool:
        return self._spec is not None

    def setup(self, label_config: str | None = None, *, hostname: str | None = None,
              access_token: str | None = None) -> str:
        """Remember the label config (validated) and how to reach Label Studio. Returns the
        model_version to report.

        Connecting does not train (Label Studio's "Start Training", or the first ``/predict`` of
        a project without a model, does): connecting and pressing Start Training trains once.
        A label config whose choices changed makes the stored scores meaningless: a training is
        queued and, until it is done, ``predict`` answers no result for classes that are gone.
        """
        if label_config:
            spec = parse_label_config(label_config)
            if spec != self._spec:
                changed = self._spec is not None and spec.choices != self._spec.choices
                self.store.put("label_config", label_config)
                self._spec = spec
                if changed and self.model_version is not None:
                    log.warning("project %s: the label config's choices changed; retraining",
                                self.project_id)
                    self.maybe_train(min_interval=0.0)
        elif self._spec is None:
            raise ValueError("label config (schema) is required for a project new to this backend")
        url, token = setup_address(hostname, access_token)
        if url is not None:
            # the URL and the token of one /setup go together: a token never goes to a host
            # another /setup named
            self._setup_url, self._setup_token = url, token
        return self.model_version or self.initial_version()

    def maybe_train(self, *, min_interval: float = 60.0) -> bool:
        """Queue training unless one ran (or failed) less than ``min_interval`` seconds ago, so
        Label Studio's frequent /setup and /predict calls do not start a job each."""
        job = self.store.last_job("train")
        if self.worker is None:
            return False
        if job is not None and (job["state"] == "running" or
                                time.time() - (job["finished"] or job["started"]) < min_interval):
            return False
        self.worker.request_training()
        return True

    def initial_version(self) -> str:
        return f"suspicion-{self.config.detection_method}-untrained"

    def predict(self, tasks: list[dict], context=None) -> list[dict]:
        """One result per task, in order: known tasks from stored scores; unknown ones scored
        now when a model exists (at most PREDICT_INLINE_LIMIT, the rest queued), else an empty
        result and a training job started."""
        ids = [int(t["id"]) for t in tasks]
        stored = self.store.lookup(ids)
        version = self.model_version
        spec = self.spec
        unknown = [t for t in tasks if int(t["id"]) not in stored]
        if unknown:
            stored.update((row.task_id, row) for row in self._score_unknown(unknown))
        out = []
        for tid in ids:
            row = stored.get(tid)
            if (row is None or version is None or row.score is None or row.predicted is None
                    or not 0 <= row.predicted < len(spec.choices)):
                # unscored, unreadable, or scored for choices the label config no longer has
                out.append({"result": [], "score": 0.0, "model_version": version or self.initial_version()})
                continue
            out.append({"result": spec.result(int(row.predicted)), "score": published_score(row),
                        "model_version": version})
        return out

    def _score_unknown(self, tasks: list[dict]) -> list[TaskRow]:
        from .feedback import score_tasks  # local: feedback imports training imports images
        if self.ranker() is None:
            self.maybe_train()
            return []
        inline = tasks[: self.config.predict_inline_limit]
        rest = tasks[self.config.predict_inline_limit:]
        if rest and self.worker:
            self.worker.queue_tasks([int(t["id"]) for t in rest])
        try:
            return score_tasks(self, inline)
        except (LabelStudioError, OSError, ValueError) as exc:
            log.warning("project %s: scoring %d new task(s) failed: %s", self.project_id, len(inline), exc)
            return []

    def fit(self, event: str, data: dict) -> dict:
        """Handle a webhook event: acknowledge, queue the work. Returns what was done."""
        worker = self.worker
        if event == "START_TRAINING":
            worker.request_training()
            return {"queued": "training"}
        if event in ANNOTATION_EVENTS:
            ann = data.get("annotation") or {}
            if not isinstance(ann.get("id"), int):
                raise ValueError(f"{event} needs annotation.id")
            self.store.add_hints("annotation", [ann["id"]])
            worker.poke()
            return {"queued": "verdict check", "annotation": ann["id"]}
        if event == "ANNOTATIONS_DELETED":  # acted on once Label Studio answers 404 for them
            ids = _ids(data.get("annotations"), "annotations")
            self.store.add_hints("annotation_deleted", ids)
            worker.poke()
            return {"queued": "deletion check", "annotations": len(ids)}
        if event == "TASKS_DELETED":
            ids = _ids(data.get("tasks"), "tasks")
            self.store.add_hints("task_deleted", ids)
            worker.poke()
            return {"queued": "deletion check", "tasks": len(ids)}
        if event == "TASKS_CREATED":
            ids = _ids(data.get("tasks"), "tasks")
            worker.queue_tasks(ids)
            return {"queued": "scoring", "tasks": len(ids)}
        return {"ignored": event}

    # -- resources ------------------------------------------------------------------------------
    def client(self) -> LabelStudioClient:
        """The Label Studio client. The configured API key is sent only to LABEL_STUDIO_URL;
        without LABEL_STUDIO_URL the backend uses the URL and the token that came with the
        latest ``/setup`` together, never the configured key (so a ``/setup`` naming another
        host cannot collect it)."""
        cfg = self.config
        url, key = label_studio_address(cfg, setup_url=self._setup_url, setup_token=self._setup_token)
        if self._client is None or self._client_for != (url, key):
            self._client = LabelStudioClient(url, key, timeout=cfg.api_timeout,
                                             download_timeout=cfg.download_timeout,
                                             max_image_bytes=cfg.max_image_bytes,
                                             pool_size=max(16, cfg.download_workers * 2))
            self._client_for = (url, key)
        return self._client

    def image_source(self) -> ImageSource:
        """Where task images come from: Label Studio's folders when mounted here, this
        project's image cache (``<MODEL_DIR>/<project>/images``), else HTTP."""
        cfg = self.config
        if self._image_cache is None:
            self._image_cache = ImageCache(self.directory / "images", max_bytes=cfg.image_cache_bytes)
            self._media = MediaReader(local_files_root=cfg.local_files_document_root or None,
                                      media_root=cfg.label_studio_media_root or None,
                                      max_bytes=cfg.max_image_bytes)
        return ImageSource(self.client(), media=self._media, cache=self._image_cache)

    def ranker(self):
        """The current ranker (base + verdicts), loaded from disk once; None before training."""
        if not self._ranker_loaded:
            with self.ranker_lock:
                if not self._ranker_loaded:
                    path = self.directory / "ranker"
                    if path.exists():
                        try:
                            ranker = self.ranker_cls.load(path)
                        except Exception as exc:  # older format, truncated or corrupt file
                            self.load_error = (f"the saved ranker in {path.name}/ cannot be used "
                                               f"({type(exc).__name__}: {exc}); retraining")
                            log.warning("project %s: %s", self.project_id, self.load_error)
                            self._ranker_loaded = True
                            self.maybe_train(min_interval=0.0)
                            return None
                        verdicts = self.store.latest_verdicts()
                        if verdicts:
                            replay_verdicts(ranker, self.store.scored_tasks(), verdicts)
                        self._ranker = ranker
                    self._ranker_loaded = True
        return self._ranker

    def set_ranker(self, ranker) -> None:
        with self.ranker_lock:
            self._ranker = ranker
            self._ranker_loaded = True
            self.load_error = None

    def status(self) -> dict:
        out = {"project": self.project_id, "model_version": self.model_version,
               "method": self.config.detection_method}
        out.update(self.store.counts())
        verdicts = self.store.latest_verdicts()
        rows = self.store.lookup([v.task_id for v in verdicts])
        faults = sum(is_fault(v, rows[v.task_id]) for v in verdicts if v.task_id in rows)
        out.update(verdicts_fault=faults, verdicts_clean=len(verdicts) - faults)
        if self.worker:
            out.update(self.worker.status())
        job = self.store.last_job("train")
        if job:
            out["last_training"] = {"state": job["state"], "started": job["started"],
                                    "finished": job["finished"],
                                    "duration": (round(job["finished"] - job["started"], 3)
                                                 if job["finished"] else None),
                                    "report": self.store.get("last_training")}
        last = self.store.last_job()
        out["last_error"] = next((j["error"] for j in [last] if j and j["error"]), None)
        if self.worker and self.worker.last_error:
            out["last_error"] = self.worker.last_error
        if self.load_error:
            out["ranker_error"] = self.load_error
        feedback = self.store.get("last_feedback")
        if feedback:
            out["last_feedback"] = feedback
        cleanup = self.store.get("last_cleanup")
        if cleanup:
            out["last_cleanup"] = cleanup
        out["versions"] = [v["version"] for v in self.store.versions()[:5]]
        return out


def _ids(items, name: str) -> list[int]:
    if not isinstance(items, list):
        raise ValueError(f"{name} must be a list of {{\"id\": ...}}")
    ids = []
    for item in items:
        value = item.get("id") if isinstance(item, dict) else None
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"each of {name} needs an integer id, got {item!r}")
        ids.append(value)
    return ids
