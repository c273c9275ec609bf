"""A stateful fake of the parts of the Label Studio 1.23.2 REST API the import script uses,
served through the ``responses`` library (no sockets). Shapes follow the real server (checked
against a running 1.23.2: tasks list ``{"tasks": [...], "total": n}``, 404 past the last page,
``file_upload_ids`` from ``import?commit_to_project=false``, ``file`` as ``upload/<pid>/<x>-name``).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import responses

TOKEN = "legacy-token-123"


@dataclass
class FakeLabelStudio:
    url: str = "http://ls.test:8080"
    token: str = TOKEN
    refresh_token: str | None = None  # a personal access token accepted at /api/token/refresh
    projects: dict = field(default_factory=dict)
    tasks: dict = field(default_factory=dict)  # project id -> list of task dicts
    uploads: dict = field(default_factory=dict)  # file upload id -> file name
    storages: list = field(default_factory=list)
    ml: list = field(default_factory=list)
    webhooks: list = field(default_factory=list)
    trained: list = field(default_factory=list)
    calls: list = field(default_factory=list)  # (method, path) of every request
    access_tokens: list = field(default_factory=list)
    expire_next_access: bool = False  # answer 401 once to a Bearer token
    drop_tasks: int = 0  # create this many fewer tasks than sent (to test the check)
    create_webhook: bool = True  # what Label Studio does when a backend is connected
    exchanges: int = 0
    setup_timeouts: int = 0  # answer this many POST /api/ml with Label Studio's /setup timeout
    _next: int = 0

    def _id(self) -> int:
        self._next += 1
        return self._next

    # -- wiring ------------------------------------------------------------------------------
    def register(self, rsps: responses.RequestsMock) -> None:
        for method in ("GET", "POST", "PATCH", "DELETE"):
            rsps.add_callback(method, re.compile(re.escape(self.url) + r"/.*"), callback=self._dispatch)

    def _dispatch(self, request):
        parts = urlsplit(request.url)
        path, query = parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.calls.append((request.method, path))
        if path == "/api/token/refresh" and request.method == "POST":
            return self._refresh(request)
        auth = request.headers.get("Authorization", "")
        if not self._authorized(auth):
            return _json(401, {"detail": "Authentication credentials were not provided."})
        routes = [
            ("GET", r"/api/current-user/whoami", self._whoami),
            ("GET", r"/api/projects", self._projects),
            ("POST", r"/api/projects", self._create_project),
            ("POST", r"/api/projects/(\d+)/import", self._import),
            ("GET", r"/api/projects/(\d+)/file-uploads", self._file_uploads),
            ("GET", r"/api/tasks", self._tasks),
            ("GET", r"/api/storages/localfiles", self._storages),
            ("POST", r"/api/storages/localfiles", self._create_storage),
            ("GET", r"/api/ml", self._ml),
            ("POST", r"/api/ml", self._create_ml),
            ("POST", r"/api/ml/(\d+)/train", self._train),
            ("GET", r"/api/webhooks", self._webhooks),
        ]
        for method, pattern, handler in routes:
            m = re.fullmatch(pattern, path)
            if m and method == request.method:
                return handler(request, query, *m.groups())
        return _json(404, {"detail": f"no fake route for {request.method} {path}"})

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

    # -- handlers ----------------------------------------------------------------------------
    def _refresh(self, request):
        body = json.loads(request.body or b"{}")
        if self.refresh_token is None or body.get("refresh") != self.refresh_token:
            return _json(401, {"detail": "Token is invalid or expired"})
        self.exchanges += 1
        access = f"access-{self.exchanges}"
        self.access_tokens.append(access)
        return _json(200, {"access": access})

    def _whoami(self, request, query):
        return _json(200, {"id": 1, "email": "admin@example.com"})

    def _projects(self, request, query):
        page, size = int(query.get("page", 1)), int(query.get("page_size", 30))
        items = list(self.projects.values())
        chunk = items[(page - 1) * size: page * size]
        if page > 1 and not chunk:
            return _json(404, {"detail": "Invalid page."})
        nxt = f"{self.url}/api/projects?page={page + 1}" if page * size < len(items) else None
        return _json(200, {"count": len(items), "next": nxt, "previous": None, "results": chunk})

    def _create_project(self, request, query):
        body = json.loads(request.body)
        pid = self._id()
        self.projects[pid] = {"id": pid, "title": body["title"], "label_config": body["label_config"]}
        self.tasks[pid] = []
        return _json(201, self.projects[pid])

    def _import(self, request, query, pid):
        pid = int(pid)
        ctype = request.headers.get("Content-Type", "")
        if ctype.startswith("multipart/form-data"):
            names = re.findall(rb'filename="([^"]*)"', request.body)
            if len(names) > 100:
                return _json(400, {"detail": "too many files"})
            ids = []
            for name in names:
                fid = self._id()
                self.uploads[fid] = f"upload/{pid}/abcd{fid:04d}-{name.decode()}"
                ids.append(fid)
            if query.get("commit_to_project", "true") != "false":
                return _json(500, {"detail": "the fake only supports commit_to_project=false uploads"})
            return _json(201, {"task_count": len(ids), "file_upload_ids": ids})
        tasks = json.loads(request.body)
        created = tasks[: max(0, len(tasks) - self.drop_tasks)]
        for t in created:
            self.tasks[pid].append(dict(t, id=self._id()))
        return _json(201, {"task_count": len(created), "annotation_count": len(created),
                           "file_upload_ids": []})

    def _file_uploads(self, request, query, pid):
        ids = json.loads(query.get("ids", "[]"))
        return _json(200, [{"id": i, "file": self.uploads[i], "size": 10} for i in ids if i in self.uploads])

    def _tasks(self, request, query):
        pid = int(query["project"])
        page, size = int(query.get("page", 1)), int(query.get("page_size", 100))
        items = self.tasks.get(pid, [])
        chunk = items[(page - 1) * size: page * size]
        if page > 1 and not chunk:
            return _json(404, {"detail": "Invalid page."})
        return _json(200, {"total": len(items), "tasks": [{"id": t["id"], "data": t["data"]} for t in chunk]})

    def _storages(self, request, query):
        return _json(200, [s for s in self.storages if s["project"] == int(query["project"])])

    def _create_storage(self, request, query):
        body = json.loads(request.body)
        st = dict(body, id=self._id(), type="localfiles")
        self.storages.append(st)
        return _json(201, st)

    def _ml(self, request, query):
        return _json(200, [m for m in self.ml if m["project"] == int(query["project"])])

    def _create_ml(self, request, query):
        body = json.loads(request.body)
        if self.setup_timeouts > 0:
            self.setup_timeouts -= 1
            return _json(400, {"status_code": 400, "validation_errors": {"non_field_errors": [
                f"Successfully connected to {body['url']} but it doesn't look like a valid ML "
                "backend. Reason: HTTPConnectionPool: Read timed out. (read timeout=3.0)."]}})
        if "unreachable" in body["url"]:
            return _json(400, {"status_code": 400, "detail": "Validation error", "validation_errors": {
                "non_field_errors": [f"Can't connect to ML backend {body['url']}, health check "
                                     "failed. <a href='x'>Learn more</a>"]}})
        ml = dict(body, id=self._id())
        self.ml.append(ml)
        if self.create_webhook:
            self.webhooks.append({"id": self._id(), "project": body["project"],
                                  "url": body["url"].rstrip("/") + "/webhook"})
        return _json(201, ml)

    def _train(self, request, query, ml_id):
        self.trained.append(int(ml_id))
        return _json(200, {})

    def _webhooks(self, request, query):
        return _json(200, [w for w in self.webhooks if w["project"] == int(query["project"])])


def _json(status: int, body) -> tuple[int, dict, str]:
    return status, {"Content-Type": "application/json"}, json.dumps(body)
