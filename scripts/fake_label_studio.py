"""One stateful fake of the parts of the Label Studio 1.23.2 REST API this project uses, for every
test package and benchmark.

:class:`FakeLabelStudio` is a WSGI application (werkzeug) holding the state: projects, tasks,
annotations, uploaded files and media, predictions per model_version, ML backends, webhooks and
Local Files storages. It is used two ways:
- in unit tests, through the ``responses`` library: :meth:`FakeLabelStudio.register` routes
  every request to ``url`` into the application (no socket);
- in benchmarks, served on 127.0.0.1 by :func:`serve` (werkzeug's threaded server).

Shapes follow the real server (checked against a running 1.23.2): ``GET /api/tasks`` answers
``{"tasks": [...], "total": n}`` and 404 past the last page, annotations and predictions only
with ``fields=all``; ``import?commit_to_project=false`` answers ``file_upload_ids`` and files are
named ``upload/<project>/<hex>-<name>``; ``import/predictions`` drops scores outside [0, 1]
silently; API and media need the ``Authorization`` header (``Token <key>`` or ``Bearer <access>``
from ``/api/token/refresh``). Predictions are not embedded in task answers (nothing here reads
them there).

It lives in ``scripts/`` because a benchmark (``scripts/bench_backend.py``) serves it; tests import
it from here (scripts must not import tests, which the Docker image does not ship).
"""
from __future__ import annotations

import itertools
import json
import re
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from backend.labels import parse_label_config
from backend.ls_client import DM_DATETIME

TOKEN = "legacy-token-123"
API = [  # (rule, endpoint, methods)
    ("/api/current-user/whoami", "whoami", ["GET"]),
    ("/api/projects", "projects", ["GET"]), ("/api/projects", "create_project", ["POST"]),
    ("/api/projects/<int:pid>", "project", ["GET"]),
    ("/api/projects/<int:pid>", "patch_project", ["PATCH"]),
    ("/api/projects/<int:pid>/import", "import_tasks", ["POST"]),
    ("/api/projects/<int:pid>/file-uploads", "file_uploads", ["GET"]),
    ("/api/projects/<int:pid>/import/predictions", "import_predictions", ["POST"]),
    ("/api/projects/<int:pid>/model-versions", "model_versions", ["GET"]),
    ("/api/projects/<int:pid>/model-versions", "delete_version", ["DELETE"]),
    ("/api/projects/<int:pid>/exports", "create_export", ["POST"]),
    ("/api/projects/<int:pid>/exports/<int:sid>", "export", ["GET"]),
    ("/api/projects/<int:pid>/exports/<int:sid>", "delete_export", ["DELETE"]),
    ("/api/projects/<int:pid>/exports/<int:sid>/download", "download_export", ["GET"]),
    ("/api/predictions/", "predictions", ["GET"]),
    ("/api/predictions/<int:pred_id>", "patch_prediction", ["PATCH"]),
    ("/api/tasks", "tasks", ["GET"]), ("/api/tasks/<int:tid>", "task", ["GET"]),
    ("/api/annotations/<int:aid>", "annotation", ["GET"]),
    ("/api/storages/localfiles", "storages", ["GET"]),
    ("/api/storages/localfiles", "create_storage", ["POST"]),
    ("/api/ml", "ml", ["GET"]), ("/api/ml", "create_ml", ["POST"]),
    ("/api/ml/<int:mid>/train", "train", ["POST"]),
    ("/api/webhooks", "webhooks", ["GET"]),
    ("/api/dm/actions", "dm_action", ["POST"]),
    ("/api/dm/columns", "dm_columns", ["GET"]),
    ("/api/dm/views", "dm_views", ["GET"]), ("/api/dm/views", "create_dm_view", ["POST"]),
    ("/data/<path:rest>", "media", ["GET"]),
]


class Call(NamedTuple):
    """A request the fake received."""

    method: str
    path: str
    query: dict
    time: float


class Event(NamedTuple):
    """A change of a project's predictions: ``kind`` is "model_version" (set) or "deleted"."""

    time: float
    kind: str
    project: int
    version: str


def _filtered(tasks: list[dict], query: dict) -> list[dict]:
    """``tasks`` that pass a Data Manager query's filters (only ``updated_at greater`` is known
    here; any other filter is a ``ValueError``)."""
    items = ((query or {}).get("filters") or {}).get("items") or []
    for item in items:
        if (item.get("filter"), item.get("operator")) != ("filter:tasks:updated_at", "greater"):
            raise ValueError(f"the fake Label Studio does not filter by {item}")
        since = datetime.strptime(item["value"], DM_DATETIME).replace(tzinfo=timezone.utc)
        tasks = [t for t in tasks if datetime.fromisoformat(t["updated_at"]) > since]
    return tasks


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


class FakeLabelStudio:
    """A Label Studio at ``url`` accepting the legacy ``token`` and, when set, the personal access
    token ``refresh_token``. State and knobs are plain attributes."""

    def __init__(self, url: str = "http://ls.test", *, token: str = TOKEN,
                 refresh_token: str | None = None):
        self.url = url.rstrip("/")
        self.token, self.refresh_token = token, refresh_token
        self.projects: dict[int, dict] = {}
        self.tasks: dict[int, dict] = {}           # task id -> task (with "project", "annotations")
        self.annotations: dict[int, dict] = {}
        self.uploads: dict[int, str] = {}          # file upload id -> file name
        self.images: dict[str, bytes] = {}         # media URL path (with its query) -> bytes
        self.predictions: list[dict] = []          # each with "id", "project", "task", "model_version"
        self._prediction_ids = itertools.count(1)
        self.prediction_counts: Counter = Counter()  # (project, model_version) -> count
        self.deleted_versions: list[str] = []
        self.storages: list[dict] = []
        self.exports: dict[int, list[dict]] = {}  # export snapshot id -> its tasks
        self.ml: list[dict] = []
        self.webhooks: list[dict] = []
        self.views: list[dict] = []                # Data Manager tabs, as GET /api/dm/views answers
        self.trained: list[int] = []               # ML backend ids Start Training was pressed for
        self.calls: list[Call] = []
        self.events: list[Event] = []
        self.auth_seen: list[str] = []             # Authorization header of every API/media call
        self.access_tokens: list[str] = []
        self.exchanges = 0
        # knobs
        self.expire_next_access = False  # answer 401 once to a Bearer token
        self.drop_tasks = 0              # create this many fewer tasks than sent
        self.create_webhook = True       # what Label Studio does when a backend is connected
        self.setup_timeouts = 0          # answer this many POST /api/ml with the /setup timeout
        self.snapshot_exports = True     # False: POST .../exports/ answers 404 (no snapshots)
        self._ids: Counter = Counter()
        # a task's updated_at: moves one hour at every change of the task or its annotations,
        # so that listings of the tasks changed since a moment are exact in tests
        self.clock = datetime(2026, 1, 1, tzinfo=timezone.utc)
        self._lock = threading.RLock()
        self._map = Map([Rule(r, endpoint=e, methods=m) for r, e, m in API], strict_slashes=False)

    # -- state ----------------------------------------------------------------------------------
    def _new_id(self, kind: str, wanted: int | None = None) -> int:
        if wanted is None:
            self._ids[kind] += 1
            return self._ids[kind]
        self._ids[kind] = max(self._ids[kind], int(wanted))
        return int(wanted)

    def create_project(self, title: str, label_config: str, *, project_id: int | None = None) -> dict:
        pid = self._new_id("project", project_id)
        self.projects[pid] = {"id": pid, "title": title, "label_config": label_config,
                              "model_version": ""}
        return self.projects[pid]

    def create_task(self, project: int, data: dict, *, task_id: int | None = None) -> dict:
        tid = self._new_id("task", task_id)
        self.tasks[tid] = {"id": tid, "project": int(project), "data": data, "annotations": []}
        self.touch(tid)
        return self.tasks[tid]

    def touch(self, task_id: int) -> None:
        """Move the task's ``updated_at`` on (Label Studio does when it or its annotations change)."""
        self.clock += timedelta(hours=1)
        self.tasks[task_id]["updated_at"] = self.clock.strftime(DM_DATETIME)

    def add_annotation(self, task_id: int, result: list, *, ann_id: int | None = None,
                       ground_truth: bool = False, updated_at: str = "2026-01-01T00:00:00Z") -> dict:
        """Add (or replace, same ``ann_id``) an annotation of a task."""
        task = self.tasks[task_id]
        aid = self._new_id("annotation", ann_id)
        ann = {"id": aid, "task": task_id, "project": task["project"], "was_cancelled": False,
               "ground_truth": ground_truth, "created_at": updated_at, "updated_at": updated_at,
               "result": result}
        self.annotations[aid] = ann
        task["annotations"] = [a for a in task["annotations"] if a["id"] != aid] + [ann]
        self.touch(task_id)
        return ann

    def annotate(self, task_id: int, choice: str, **kwargs: Any) -> dict:
        """Annotate a task with ``choice`` of its project's Choices tag (see :meth:`add_annotation`)."""
        spec = parse_label_config(self.projects[self.tasks[task_id]["project"]]["label_config"])
        return self.add_annotation(task_id, spec.result(spec.index(choice)), **kwargs)

    def project_tasks(self, project: int) -> list[dict]:
        return [t for t in self.tasks.values() if t["project"] == project]

    def delete_tasks(self, task_ids) -> None:
        for tid in task_ids:
            for ann in self.tasks.pop(tid)["annotations"]:
                self.annotations.pop(ann["id"], None)

    def add_predictions(self, project: int, predictions: list[dict]) -> int:
        """Store the predictions with a score in [0, 1] (Label Studio drops the others silently)."""
        kept = [dict(p, project=project, id=next(self._prediction_ids)) for p in predictions
                if isinstance(p.get("score"), (int, float)) and 0 <= p["score"] <= 1]
        self.predictions.extend(kept)
        self.prediction_counts.update((project, p.get("model_version", "")) for p in kept)
        return len(kept)

    def current_scores(self, project: int) -> dict[int, float]:
        """``{task: score}`` of the predictions of the project's current model_version."""
        version = self.projects[project]["model_version"]
        return {p["task"]: p["score"] for p in self.predictions
                if p["project"] == project and p["model_version"] == version}

    def calls_to(self, method: str, path: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.path == path]

    # -- wiring ---------------------------------------------------------------------------------
    def register(self, rsps) -> None:
        """Answer every request to ``url`` made through ``rsps`` (a ``responses.RequestsMock``)."""
        pattern = re.compile(re.escape(self.url) + r"(/.*)?$")
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            rsps.add_callback(method, pattern, callback=self.respond)

    def respond(self, request) -> tuple[int, dict, bytes]:
        """The answer to a ``requests.PreparedRequest`` (the ``responses`` callback)."""
        parts = urlsplit(request.url)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        body = request.body.encode() if isinstance(request.body, str) else request.body
        builder = EnvironBuilder(path=parts.path, query_string=parts.query, method=request.method,
                                 headers=headers, data=body or b"")
        try:
            resp = Response.from_app(self, builder.get_environ(), buffered=True)
        finally:
            builder.close()
        return resp.status_code, dict(resp.headers), resp.get_data()

    def __call__(self, environ, start_response):
        request = Request(environ)
        with self._lock:
            response = self._dispatch(request)
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        self.calls.append(Call(request.method, request.path, request.args.to_dict(), time.time()))
        if request.path == "/api/token/refresh" and request.method == "POST":
            return self._refresh(request)
        if request.path == "/_fake/state":
            return _json({"model_versions": {p["id"]: p["model_version"] for p in self.projects.values()},
                          "predictions": {f"{pid}/{v}": n for (pid, v), n in self.prediction_counts.items()}})
        if request.path == "/_fake/events":
            return _json([e._asdict() for e in self.events])
        self.auth_seen.append(request.headers.get("Authorization", ""))
        if not self._authorized(request.headers.get("Authorization", "")):
            return _json({"detail": "Authentication credentials were not provided."}, 401)
        try:
            endpoint, args = self._map.bind("ls").match(request.path, method=request.method)
        except HTTPException:  # NotFound, MethodNotAllowed
            return _json({"detail": f"no fake route for {request.method} {request.path}"}, 404)
        return getattr(self, "_" + endpoint)(request, **args)

    def _authorized(self, auth: str) -> bool:
        if auth == f"Token {self.token}":
            return True
        if auth.startswith("Bearer ") and auth[7:] in self.access_tokens:
            if self.expire_next_access:
                self.expire_next_access = False
                self.access_tokens.remove(auth[7:])
                return False
            return True
        return False

    # -- handlers -------------------------------------------------------------------------------
    def _refresh(self, request):
        body = request.get_json(silent=True) or {}
        if self.refresh_token is None or body.get("refresh") != self.refresh_token:
            return _json({"detail": "Token is invalid or expired"}, 401)
        self.exchanges += 1
        access = f"access-{self.exchanges}"
        self.access_tokens.append(access)
        return _json({"access": access})

    def _whoami(self, request):
        return _json({"id": 1, "email": "admin@example.com"})

    def _projects(self, request):
        page, size = request.args.get("page", 1, int), request.args.get("page_size", 30, int)
        items = list(self.projects.values())
        chunk = items[(page - 1) * size: page * size]
        if page > 1 and not chunk:
            return _json({"detail": "Invalid page."}, 404)
        nxt = f"{self.url}/api/projects?page={page + 1}" if page * size < len(items) else None
        return _json({"count": len(items), "next": nxt, "previous": None, "results": chunk})

    def _create_project(self, request):
        body = request.get_json()
        return _json(self.create_project(body["title"], body["label_config"]), 201)

    def _project(self, request, pid):
        if pid not in self.projects:
            return _json({"detail": "Not found."}, 404)
        resp = _json(dict(self.projects[pid], task_number=len(self.project_tasks(pid))))
        resp.headers["Date"] = format_datetime(self.clock, usegmt=True)  # the fake's clock
        return resp

    def _patch_project(self, request, pid):
        body = request.get_json()
        version = body.get("model_version")
        if version is not None and not self.prediction_counts[(pid, version)]:
            return _json({"model_version": ["no predictions of this version"]}, 400)
        self.projects[pid].update(body)
        if version is not None:
            self.events.append(Event(time.time(), "model_version", pid, version))
        return _json(self.projects[pid])

    def _import_tasks(self, request, pid):
        if request.files:
            if len(request.files) > 100:
                return _json({"detail": "too many files"}, 400)
            if request.args.get("commit_to_project", "true") != "false":
                return _json({"detail": "the fake only supports commit_to_project=false uploads"}, 500)
            ids = []
            for f in request.files.values():
                fid = self._new_id("upload")
                self.uploads[fid] = f"upload/{pid}/{uuid.uuid4().hex[:8]}-{f.filename}"
                self.images["/data/" + self.uploads[fid]] = f.read()
                ids.append(fid)
            return _json({"task_count": len(ids), "file_upload_ids": ids}, 201)
        tasks = request.get_json()
        created = tasks[: max(0, len(tasks) - self.drop_tasks)]
        for t in created:
            task = self.create_task(pid, t["data"])
            for ann in t.get("annotations") or []:
                self.add_annotation(task["id"], ann["result"])
        return _json({"task_count": len(created), "annotation_count": len(created),
                      "file_upload_ids": []}, 201)

    def _file_uploads(self, request, pid):
        ids = json.loads(request.args.get("ids", "[]"))
        return _json([{"id": i, "file": self.uploads[i], "size": 10} for i in ids if i in self.uploads])

    def _import_predictions(self, request, pid):
        return _json({"created": self.add_predictions(pid, request.get_json())}, 201)

    def _predictions(self, request):
        """``GET /api/predictions/``: a plain list, of one task's with ``?task=``."""
        task = request.args.get("task", type=int)
        return _json([p for p in self.predictions if task is None or p["task"] == task])

    def _patch_prediction(self, request, pred_id):
        found = next((p for p in self.predictions if p["id"] == pred_id), None)
        if found is None:
            return _json({"detail": "Not found."}, 404)
        found.update({k: v for k, v in (request.get_json() or {}).items() if k in ("score", "result")})
        return _json(found)

    def _model_versions(self, request, pid):
        return _json({v: n for (p, v), n in self.prediction_counts.items() if p == pid and n})

    def _delete_version(self, request, pid):
        version = request.get_json()["model_version"]
        before = len(self.predictions)
        self.predictions = [p for p in self.predictions
                            if p["project"] != pid or p["model_version"] != version]
        self.prediction_counts.pop((pid, version), None)
        self.deleted_versions.append(version)
        self.events.append(Event(time.time(), "deleted", pid, version))
        return _json({"deleted_predictions": before - len(self.predictions)})

    def _dm_action(self, request):
        """Only "delete_tasks_predictions" on selected tasks (``selectedItems.included``)."""
        pid = request.args.get("project", type=int)
        if request.args.get("id") != "delete_tasks_predictions":
            return _json({"detail": f"the fake has no action {request.args.get('id')!r}"}, 422)
        selected = (request.get_json() or {}).get("selectedItems") or {}
        if selected.get("all", True):
            return _json({"detail": "the fake only deletes predictions of included tasks"}, 422)
        ids = set(selected.get("included") or [])
        gone = [p for p in self.predictions if p["project"] == pid and p["task"] in ids]
        self.predictions = [p for p in self.predictions if not (p["project"] == pid and p["task"] in ids)]
        for p in gone:
            self.prediction_counts[(pid, p["model_version"])] -= 1
        self.events.append(Event(time.time(), "tasks_predictions_deleted", pid, ""))
        return _json({"processed_items": len(gone), "detail": f"Deleted {len(gone)} predictions"})

    def _create_export(self, request, pid):
        """An export snapshot of every task with its annotations, completed at once (Label
        Studio without Redis builds it inside the request)."""
        if not self.snapshot_exports or pid not in self.projects:
            return _json({"detail": "Not found."}, 404)
        sid = self._new_id("export")
        self.exports[sid] = json.loads(json.dumps(self.project_tasks(pid)))
        return _json({"id": sid, "status": "completed", "title": "", "counters": {
            "task_number": len(self.exports[sid])}}, 201)

    def _export(self, request, pid, sid):
        if sid not in self.exports:
            return _json({"detail": "Not found."}, 404)
        return _json({"id": sid, "status": "completed"})

    def _download_export(self, request, pid, sid):
        if sid not in self.exports or request.args.get("exportType", "JSON") != "JSON":
            return _json({"detail": "Not found."}, 404)
        return _json(self.exports[sid])

    def _delete_export(self, request, pid, sid):
        self.exports.pop(sid, None)
        return Response(status=204)

    def _tasks(self, request):
        pid = request.args.get("project", type=int)
        page, size = request.args.get("page", 1, int), request.args.get("page_size", 100, int)
        items = self.project_tasks(pid)
        if request.args.get("query"):
            try:
                items = _filtered(items, json.loads(request.args["query"]))
            except ValueError as exc:
                return _json({"detail": str(exc)}, 400)
        chunk = items[(page - 1) * size: page * size]
        if page > 1 and not chunk:
            return _json({"detail": "Invalid page."}, 404)
        if request.args.get("include"):
            keys = request.args["include"].split(",")
            chunk = [{k: t[k] for k in keys if k in t} for t in chunk]
        elif request.args.get("fields") != "all":  # Label Studio's default: the task only
            chunk = [{k: v for k, v in t.items() if k != "annotations"} for t in chunk]
        return _json({"tasks": chunk, "total": len(items)})

    def _task(self, request, tid):
        return _json(self.tasks[tid]) if tid in self.tasks else _json({"detail": "Not found."}, 404)

    def _annotation(self, request, aid):
        ann = self.annotations.get(aid)
        return _json(ann) if ann else _json({"detail": "Not found."}, 404)

    def _media(self, request, rest):
        key = request.path + ("?" + request.query_string.decode() if request.query_string else "")
        if key not in self.images:
            return Response("not found", status=404)
        return Response(self.images[key], mimetype="image/png")

    def _storages(self, request):
        return _json([s for s in self.storages if s["project"] == request.args.get("project", type=int)])

    def _create_storage(self, request):
        st = dict(request.get_json(), id=self._new_id("storage"), type="localfiles")
        self.storages.append(st)
        return _json(st, 201)

    def _ml(self, request):
        return _json([m for m in self.ml if m["project"] == request.args.get("project", type=int)])

    def _create_ml(self, request):
        body = request.get_json()
        if self.setup_timeouts > 0:
            self.setup_timeouts -= 1
            return _json({"status_code": 400, "validation_errors": {"non_field_errors": [
                f"Successfully connected to {body['url']} but it doesn't look like a valid ML "
                "backend. Reason: HTTPConnectionPool: Read timed out. (read timeout=3.0)."]}}, 400)
        if "unreachable" in body["url"]:
            return _json({"status_code": 400, "detail": "Validation error", "validation_errors": {
                "non_field_errors": [f"Can't connect to ML backend {body['url']}, health check "
                                     "failed. <a href='x'>Learn more</a>"]}}, 400)
        ml = dict(body, id=self._new_id("ml"))
        self.ml.append(ml)
        if self.create_webhook:
            self.webhooks.append({"id": self._new_id("webhook"), "project": body["project"],
                                  "url": body["url"].rstrip("/") + "/webhook"})
        return _json(ml, 201)

    def _train(self, request, mid):
        self.trained.append(mid)
        return _json({})

    def _webhooks(self, request):
        return _json([w for w in self.webhooks if w["project"] == request.args.get("project", type=int)])

    def _dm_columns(self, request):
        """A few of 1.23.2's columns: the task id and total annotations shown by default, the
        Prediction score and created_at hidden, the data group with its children."""
        hidden, shown = {"explore": False, "labeling": False}, {"explore": True, "labeling": True}
        return _json({"columns": [
            {"id": "id", "target": "tasks", "visibility_defaults": {"explore": True, "labeling": False}},
            {"id": "total_annotations", "target": "tasks", "visibility_defaults": shown},
            {"id": "predictions_score", "target": "tasks", "visibility_defaults": hidden},
            {"id": "created_at", "target": "tasks", "visibility_defaults": hidden},
            {"id": "image", "target": "tasks", "parent": "data", "visibility_defaults": shown},
            {"id": "path", "target": "tasks", "parent": "data",
             "visibility_defaults": {"explore": True, "labeling": False}},
            {"id": "data", "target": "tasks", "children": ["image", "path"]}]})

    def _dm_views(self, request):
        return _json([v for v in self.views if v["project"] == request.args.get("project", type=int)])

    def _create_dm_view(self, request):
        body = request.get_json()
        view = {"id": self._new_id("view"), "project": int(body["project"]), "data": body["data"]}
        self.views.append(view)
        return _json(view, 201)


class _QuietHandler(WSGIRequestHandler):
    """No access log; no Nagle delay (else a 40 ms delayed-ACK stall per keep-alive answer)."""

    disable_nagle_algorithm = True

    def log_request(self, *args, **kwargs) -> None:
        pass


def serve(app, *, host: str = "127.0.0.1", port: int = 0, quiet: bool = True) -> BaseWSGIServer:
    """Serve a WSGI ``app`` on ``host:port`` (0: a free port) in a daemon thread; the server's URL
    is ``f"http://{host}:{server.server_port}"`` (also set as ``app.url`` for the fake)."""
    server = make_server(host, port, app, threaded=True,
                         request_handler=_QuietHandler if quiet else None)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    if isinstance(app, FakeLabelStudio):
        app.url = f"http://{host}:{server.server_port}"
    return server
