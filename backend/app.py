"""The Label Studio ML-backend protocol on Flask 3: /health, /setup, /predict, /webhook,
/versions, plus /status. Errors are JSON ``{"error": "..."}``; tracebacks go to the log only."""
from __future__ import annotations

import base64
import hmac
import logging
from typing import Any, Mapping

from flask import Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from .config import Config
from .model import parse_project_id
from .registry import Projects

log = logging.getLogger(__name__)

WEBHOOK_ACTIONS_WITH_AUTH = ("START_TRAINING",)


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


def create_app(config: Config | Mapping[str, Any] | None = None) -> Flask:
    """Build the app. ``config``: a ``Config``, or a mapping of overrides on the environment's."""
    if config is None:
        config = Config.from_env()
    elif not isinstance(config, Config):
        config = Config.from_env().with_overrides(config)
    logging.basicConfig(level=config.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("backend").setLevel(config.log_level)
    app = Flask(__name__)
    app.config["SUSPICION"] = config
    app.extensions["suspicion"] = Projects(config)

    @app.before_request
    def _start_workers():
        projects().ensure_started()

    @app.errorhandler(BadRequest)
    def _bad(exc: BadRequest):
        headers = {"WWW-Authenticate": 'Basic realm="ml-backend"'} if exc.status == 401 else {}
        return jsonify(error=exc.message), exc.status, headers

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        return jsonify(error=f"{exc.name}: {exc.description}"), exc.code

    @app.errorhandler(Exception)
    def _crash(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return jsonify(error=f"internal error ({type(exc).__name__}); see the backend log"), 500

    @app.get("/")
    @app.get("/health")
    def health():
        return jsonify(status="UP", model_class="SuspicionModel",
                       method=config.detection_method)

    @app.post("/setup")
    def setup():
        _require_auth()
        body = _json_object()
        model = _model(body.get("project"))
        try:
            version = model.setup(body.get("schema") or body.get("label_config"),
                                  hostname=body.get("hostname"), access_token=body.get("access_token"))
        except ValueError as exc:
            raise BadRequest(str(exc), 422) from None
        return jsonify(model_version=version)

    @app.post("/predict")
    def predict():
        _require_auth()
        body = _json_object()
        tasks = body.get("tasks")
        if not isinstance(tasks, list):
            raise BadRequest("'tasks' must be a list of task objects")
        for i, task in enumerate(tasks):
            if not isinstance(task, dict) or not isinstance(task.get("id"), int):
                raise BadRequest(f"tasks[{i}] needs an integer 'id'")
        model = _model(body.get("project"))
        label_config = body.get("label_config")
        try:
            if label_config or not model.known:
                model.setup(label_config)
            spec = model.spec
        except ValueError as exc:
            raise BadRequest(str(exc), 422) from None
        missing = [t["id"] for t in tasks if spec.image_url(t) is None]
        if missing:
            raise BadRequest(f"task(s) {missing[:10]} have no image in data[{spec.image_key!r}]", 422)
        context = (body.get("params") or {}).get("context") if isinstance(body.get("params"), dict) else None
        results = model.predict(tasks, context=context)
        return jsonify(results=results, model_version=model.model_version or model.initial_version())

    @app.post("/webhook")
    def webhook():
        body = _json_object()
        action = body.get("action")
        if not isinstance(action, str) or not action:
            raise BadRequest("'action' is required")
        if action in WEBHOOK_ACTIONS_WITH_AUTH:
            _require_auth()
        if "project" not in body:
            raise BadRequest("'project' is required")
        try:
            pid = parse_project_id(body.get("project"))
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        if action == "START_TRAINING":
            model = projects().get(pid)
            project = body["project"] if isinstance(body["project"], dict) else {}
            if project.get("label_config") or not model.known:
                try:
                    model.setup(project.get("label_config"))
                except ValueError as exc:
                    raise BadRequest(str(exc), 422) from None
        else:
            model = projects().get(pid, create=False)
            if model is None or not model.known:
                return jsonify(status="ignored", reason=f"project {pid} is not known to this backend")
        try:
            outcome = model.fit(action, body)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        return jsonify(status="ok", action=action, **outcome)

    @app.get("/status")
    def status():
        _require_auth()
        raw = request.args.get("project")
        if raw is None:
            return jsonify(projects=[m.status() for m in projects().all()])
        try:
            pid = parse_project_id(raw)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        model = projects().get(pid, create=False)
        if model is None:
            raise BadRequest(f"project {pid} is not known to this backend", 404)
        return jsonify(model.status())

    @app.get("/versions")
    def versions():
        _require_auth()
        raw = request.args.get("project")
        models = projects().all()
        if raw is not None:
            try:
                pid = parse_project_id(raw)
            except ValueError as exc:
                raise BadRequest(str(exc)) from None
            models = [m for m in models if m.project_id == pid]
        found = [v["version"] for m in models for v in m.store.versions() if v["state"] == "current"]
        found += [v["version"] for m in models for v in m.store.versions() if v["state"] != "current"]
        return jsonify(versions=found, model_dir=str(config.model_dir))

    return app


def projects() -> Projects:
    return current_app.extensions["suspicion"]


def _json_object() -> dict:
    body = request.get_json(silent=True)
    if body is None:
        raise BadRequest("request body must be JSON (Content-Type: application/json)")
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def _model(raw_project):
    if raw_project is None:
        raise BadRequest("'project' is required (\"<id>.<timestamp>\")")
    try:
        pid = parse_project_id(raw_project)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return projects().get(pid)


def _require_auth() -> None:
    cfg: Config = current_app.config["SUSPICION"]
    if not cfg.basic_auth:
        return
    header = request.headers.get("Authorization", "")
    user = password = ""
    if header.startswith("Basic "):
        try:
            user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            user = password = ""
    ok_user = hmac.compare_digest(user.encode(), cfg.basic_auth_user.encode())
    ok_pass = hmac.compare_digest(password.encode(), cfg.basic_auth_pass.encode())
    if not (ok_user and ok_pass):
        raise _Unauthorized()


class _Unauthorized(BadRequest):
    def __init__(self):
        super().__init__("authentication required: this backend uses HTTP Basic auth "
                         "(set it on the ML backend in Label Studio)", 401)
