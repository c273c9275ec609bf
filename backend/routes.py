"""The routes of the Label Studio ML-backend protocol: /health, /setup, /predict, /webhook,
/versions, plus /status. Each validates its request, hands the work to the project's model
(``backend.model``) and answers JSON; refusals are ``ApiError``s (see ``backend.errors``)."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from .auth import basic_auth_required, check_basic_auth
from .config import Config
from .errors import ApiError, refused_as
from .model import parse_project_id
from .registry import Projects

WEBHOOK_ACTIONS_WITH_AUTH = ("START_TRAINING",)

bp = Blueprint("ml_backend", __name__)


@bp.get("/")
@bp.get("/health")
def health():
    return jsonify(status="UP", model_class="SuspicionModel", method=settings().detection_method)


@bp.post("/setup")
@basic_auth_required
def setup():
    body = json_object()
    pid = required_project_id(body.get("project"))
    label_config = body.get("schema") or body.get("label_config")
    model = projects().confirmed(pid, label_config=label_config, hostname=body.get("hostname"),
                                 access_token=body.get("access_token"))
    with refused_as(422):
        version = model.setup(label_config, hostname=body.get("hostname"),
                              access_token=body.get("access_token"))
    return jsonify(model_version=version)


@bp.post("/predict")
@basic_auth_required
def predict():
    body = json_object()
    tasks = body.get("tasks")
    if not isinstance(tasks, list):
        raise ApiError("'tasks' must be a list of task objects")
    for i, task in enumerate(tasks):
        if not isinstance(task, dict) or not isinstance(task.get("id"), int):
            raise ApiError(f"tasks[{i}] needs an integer 'id'")
    pid = required_project_id(body.get("project"))
    label_config = body.get("label_config")
    model = projects().confirmed(pid, label_config=label_config)
    with refused_as(422):
        if label_config or not model.known:
            model.setup(label_config)
        spec = model.spec
    missing = [t["id"] for t in tasks if spec.image_url(t) is None]
    if missing:
        raise ApiError(f"task(s) {missing[:10]} have no image in data[{spec.image_key!r}]", 422)
    params = body.get("params")
    context = params.get("context") if isinstance(params, dict) else None
    results = model.predict(tasks, context=context)
    return jsonify(results=results, model_version=model.model_version or model.initial_version())


@bp.post("/webhook")
def webhook():
    body = json_object()
    action = body.get("action")
    if not isinstance(action, str) or not action:
        raise ApiError("'action' is required")
    if action in WEBHOOK_ACTIONS_WITH_AUTH:
        check_basic_auth()
    if "project" not in body:
        raise ApiError("'project' is required")
    pid = project_id(body["project"])
    if action == "START_TRAINING":
        project = body["project"] if isinstance(body["project"], dict) else {}
        model = projects().confirmed(pid, label_config=project.get("label_config"))
        if project.get("label_config") or not model.known:
            with refused_as(422):
                model.setup(project.get("label_config"))
    else:
        model = projects().get(pid, create=False)
        if model is None or not model.known:
            return jsonify(status="ignored", reason=f"project {pid} is not known to this backend")
    with refused_as(400):
        outcome = model.fit(action, body)
    return jsonify(status="ok", action=action, **outcome)


@bp.get("/status")
@basic_auth_required
def status():
    raw = request.args.get("project")
    if raw is None:
        return jsonify(projects=[m.status() for m in projects().all()])
    pid = project_id(raw)
    model = projects().get(pid, create=False)
    if model is None:
        raise ApiError(f"project {pid} is not known to this backend", 404)
    return jsonify(model.status())


@bp.get("/versions")
@basic_auth_required
def versions():
    raw = request.args.get("project")
    models = projects().all()
    if raw is not None:
        pid = project_id(raw)
        models = [m for m in models if m.project_id == pid]
    found = [v["version"] for m in models for v in m.store.versions() if v["state"] == "current"]
    found += [v["version"] for m in models for v in m.store.versions() if v["state"] != "current"]
    return jsonify(versions=found)


# -- request helpers -------------------------------------------------------------------------------
def settings() -> Config:
    return current_app.config["SUSPICION"]


def projects() -> Projects:
    return current_app.extensions["suspicion"]


def json_object() -> dict:
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # json's decoder gives up past Python's recursion limit
        raise ApiError("request body is JSON nested too deeply") from None
    if body is None:
        raise ApiError("request body must be JSON (Content-Type: application/json)")
    if not isinstance(body, dict):
        raise ApiError("request body must be a JSON object")
    return body


def project_id(raw) -> int:
    with refused_as(400):
        return parse_project_id(raw)


def required_project_id(raw_project) -> int:
    """The project id a /setup or /predict body names."""
    if raw_project is None:
        raise ApiError("'project' is required (\"<id>.<timestamp>\")")
    return project_id(raw_project)
