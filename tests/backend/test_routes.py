"""Every route, fed with the requests Label Studio 1.23.2 really sent (tests/fixtures/ls-payloads)."""
from __future__ import annotations

import base64
import json
import threading

import responses


def post(client, path, body, **headers):
    return client.post(path, json=body, headers=headers)


def basic(user, pw):
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


def test_health_answers_up(client, h):
    req = h.payload("health.json")
    resp = client.get(req["path"])
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "UP"


def test_setup_and_start_training_answer_before_any_training_work(client, rsps, h, fake_ls):
    """/setup (Label Studio gives it 3 s) and Start Training answer without waiting for a
    training: they answer while the job is held inside its task listing."""
    listing, release = threading.Event(), threading.Event()
    fake_ls.snapshot_exports = False  # the listing falls back to GET /api/tasks, held below

    def held_task_list(request):
        listing.set()
        release.wait(10)
        return 200, {}, json.dumps({"tasks": [], "total": 0})
    rsps.add_callback(responses.GET, f"{h.LS}/api/tasks", callback=held_task_list)
    try:
        resp = post(client, "/setup", h.payload("setup.json")["body"])
        assert resp.status_code == 200, resp.get_json()
        assert resp.get_json()["model_version"] == "suspicion-dfaulo-untrained"
        store = client.application.extensions["suspicion"].get(1).store
        job = store.last_job("train")
        assert job is None or job["finished"] is None
        resp = post(client, "/webhook", h.payload("webhook-start-training.json")["body"])
        assert resp.status_code == 200 and resp.get_json()["queued"] == "training"
        assert listing.wait(10), "Start Training queued no training"
        job = store.last_job("train")
        assert job["state"] == "running" and job["finished"] is None
    finally:
        release.set()


def test_setup_rejects_config_without_image_choices_pair(client):
    resp = post(client, "/setup", {"project": "1.17", "schema": "<View><Text name='t' value='$t'/>"
                                   "<Choices name='c' toName='t'><Choice value='a'/><Choice value='b'/>"
                                   "</Choices></View>"})
    assert resp.status_code == 422
    assert "Image" in resp.get_json()["error"]


def test_setup_rejects_non_xml_config(client):
    resp = post(client, "/setup", {"project": "1.17", "schema": "<View><Image"})
    assert resp.status_code == 422
    assert "XML" in resp.get_json()["error"]


def test_setup_needs_schema_for_new_project(client):
    resp = post(client, "/setup", {"project": "5.17"})
    assert resp.status_code == 422
    assert "label config" in resp.get_json()["error"]


def test_malformed_json_is_a_clear_400(client):
    for path in ("/setup", "/predict", "/webhook"):
        resp = client.post(path, data="{not json", content_type="application/json")
        assert resp.status_code == 400
        assert "JSON" in resp.get_json()["error"]
    resp = client.post("/predict", data="[1, 2]", content_type="application/json")
    assert resp.status_code == 400 and "object" in resp.get_json()["error"]


def test_missing_fields_are_named(client, h):
    body = h.payload("predict-dm-action.json")["body"]
    no_tasks = {k: v for k, v in body.items() if k != "tasks"}
    resp = post(client, "/predict", no_tasks)
    assert resp.status_code == 400 and "tasks" in resp.get_json()["error"]
    no_project = {k: v for k, v in body.items() if k != "project"}
    resp = post(client, "/predict", no_project)
    assert resp.status_code == 400 and "project" in resp.get_json()["error"]
    resp = post(client, "/predict", {**body, "project": "abc"})
    assert resp.status_code == 400 and "project" in resp.get_json()["error"]
    resp = post(client, "/predict", {**body, "tasks": [{"data": {}}]})
    assert resp.status_code == 400 and "id" in resp.get_json()["error"]
    resp = post(client, "/webhook", {"project": {"id": 1}})
    assert resp.status_code == 400 and "action" in resp.get_json()["error"]


def test_predict_task_without_image_is_422(client, h):
    body = h.payload("predict-dm-action.json")["body"]
    task = dict(body["tasks"][0], data={"text": "no image here"})
    resp = post(client, "/predict", {**body, "tasks": [task]})
    assert resp.status_code == 422
    assert "no image" in resp.get_json()["error"]


def test_predict_unknown_project_without_config_is_422(client, h):
    body = h.payload("predict-test-random.json")["body"]
    resp = post(client, "/predict", {**body, "project": "77.1", "label_config": None})
    assert resp.status_code == 422


PREDICT_PAYLOADS = ("predict-dm-action.json", "predict-interactive.json", "predict-test-random.json",
                    "predict-task-open.json", "predict-next-task.json", "predict-dm-task-list.json")


def test_predict_before_training_gives_empty_results_in_order(client, h):
    for name in PREDICT_PAYLOADS:
        body = h.payload(name)["body"]
        resp = post(client, "/predict", body)
        assert resp.status_code == 200, (name, resp.get_json())
        assert resp.get_json()["model_version"] == "suspicion-dfaulo-untrained"
        assert resp.get_json()["results"] == [
            {"result": [], "score": 0.0, "model_version": "suspicion-dfaulo-untrained"}] * len(body["tasks"])


def test_predict_after_training_answers_the_published_scores(client, fake_ls, h):
    """The captured /predict bodies (tasks 1-4) against a project trained with the fake ranker:
    every task gets the score and class published to Label Studio, the flipped task 3 first."""
    h.seed(fake_ls, n=12, flipped=(3,))
    assert post(client, "/setup", h.payload("setup.json")["body"]).status_code == 200
    assert post(client, "/webhook", h.payload("webhook-start-training.json")["body"]).status_code == 200
    model = client.application.extensions["suspicion"].get(1)
    assert h.wait_for(lambda: fake_ls.model_version is not None and model.worker.idle()), model.status()
    published = fake_ls.current()
    assert sorted(published) == list(range(1, 13)) and max(published, key=published.get) == 3
    for name in PREDICT_PAYLOADS:
        body = h.payload(name)["body"]
        resp = post(client, "/predict", body)
        assert resp.status_code == 200, (name, resp.get_json())
        assert resp.get_json()["model_version"] == fake_ls.model_version
        results = resp.get_json()["results"]
        assert [r["score"] for r in results] == [published[t["id"]] for t in body["tasks"]], name
        for task, r in zip(body["tasks"], results):
            assert r["model_version"] == fake_ls.model_version
            assert r["result"][0]["value"]["choices"] == [str(task["id"] % 3)]   # its true class
    assert published[3] > 0.5 and published[3] > 3 * max(published[t] for t in (1, 2, 4))


def test_webhooks_captured_are_acknowledged_with_what_was_done(client, h):
    """Each captured webhook is answered with what was done, and that is never the work itself:
    queued for the project's worker, stored state forgotten, or ignored."""
    post(client, "/setup", h.payload("setup.json")["body"])
    outcomes = {}
    for name in ("webhook-annotation-created.json", "webhook-annotation-updated.json",
                 "webhook-annotations-deleted.json", "webhook-tasks-created.json",
                 "webhook-tasks-created-json-import.json", "webhook-tasks-created-storage-sync.json",
                 "webhook-tasks-deleted.json", "webhook-project-updated.json",
                 "webhook-start-training.json"):
        req = h.payload(name)
        resp = post(client, "/webhook", req["body"])
        assert resp.status_code == 200, (name, resp.get_json())
        body = resp.get_json()
        assert body.pop("status") == "ok" and body.pop("action") == req["body"]["action"], name
        done = {k for k in body if k in ("queued", "ignored") or k.startswith("forgotten_")}
        assert len(done) == 1, (name, body)
        outcomes[req["body"]["action"]] = body
    assert outcomes["START_TRAINING"]["queued"] == "training"
    assert outcomes["ANNOTATION_CREATED"]["queued"] == outcomes["ANNOTATION_UPDATED"]["queued"]
    assert outcomes["TASKS_CREATED"]["queued"] == "scoring"
    assert outcomes["PROJECT_UPDATED"] == {"ignored": "PROJECT_UPDATED"}


def test_unknown_action_is_ignored_with_200(client, h):
    post(client, "/setup", h.payload("setup.json")["body"])
    body = dict(h.payload("webhook-project-updated.json")["body"], action="SOMETHING_NEW")
    resp = post(client, "/webhook", body)
    assert resp.status_code == 200 and resp.get_json()["ignored"] == "SOMETHING_NEW"


def test_webhook_for_unknown_project_is_ignored(client, h):
    body = h.payload("webhook-annotation-created.json")["body"]
    resp = post(client, "/webhook", {**body, "project": {"id": 42}})
    assert resp.status_code == 200 and resp.get_json()["status"] == "ignored"


def test_status_and_versions(client, h):
    assert client.get("/status").get_json() == {"projects": []}
    post(client, "/setup", h.payload("setup.json")["body"])
    st = client.get("/status?project=1").get_json()
    assert st["project"] == 1 and "state" in st and "tasks" in st and "last_error" in st
    resp = client.get("/status?project=99")
    assert resp.status_code == 404 and "99" in resp.get_json()["error"]
    assert client.get("/status?project=x").status_code == 400
    req = h.payload("versions.json")
    resp = client.get(req["path"])
    assert resp.status_code == 200 and resp.get_json()["versions"] == []


def test_unknown_route_and_method_are_json(client):
    resp = client.get("/nope")
    assert resp.status_code == 404 and "error" in resp.get_json()
    resp = client.get("/setup")
    assert resp.status_code == 405 and "error" in resp.get_json()


def test_basic_auth_required_where_label_studio_sends_it(make_app, fake_ls, h):
    app = make_app(basic_auth_user="ls", basic_auth_pass="s3cret")
    client = app.test_client()
    good = {"Authorization": basic("ls", "s3cret")}
    bad = {"Authorization": basic("ls", "wrong")}
    setup = h.payload("setup.json")["body"]
    predict = h.payload("predict-dm-action-basic-auth.json")["body"]
    train = h.payload("webhook-start-training-basic-auth.json")["body"]
    assert client.get("/health").status_code == 200
    for method, path, body in (("post", "/setup", setup), ("post", "/predict", predict),
                               ("get", "/status", None), ("get", "/versions", None),
                               ("post", "/webhook", train)):
        call = getattr(client, method)
        kwargs = {"json": body} if body is not None else {}
        no = call(path, **kwargs)
        assert no.status_code == 401, path
        assert "WWW-Authenticate" in no.headers and "auth" in no.get_json()["error"]
        assert call(path, headers=bad, **kwargs).status_code == 401, path
        assert call(path, headers={"Authorization": "Basic !!notbase64"}, **kwargs).status_code == 401
        assert call(path, headers=good, **kwargs).status_code == 200, path
    # annotation and task webhooks never carry auth: accepted, but only as hints
    ann = h.payload("webhook-annotation-created.json")["body"]
    assert client.post("/webhook", json=ann).status_code == 200


def test_basic_auth_compares_user_and_password_every_time(make_app, h, monkeypatch):
    """Constant time: both the user and the password are compared with hmac.compare_digest,
    whichever is wrong; a header that is not Basic counts as no credentials."""
    import backend.auth
    compared = []
    real = backend.auth.hmac.compare_digest

    def counting(a, b):
        compared.append((a, b))
        return real(a, b)
    monkeypatch.setattr(backend.auth.hmac, "compare_digest", counting)
    client = make_app(basic_auth_user="ls", basic_auth_pass="s3cret").test_client()
    for header, status in ((basic("nobody", "s3cret"), 401), (basic("ls", "wrong"), 401),
                           (basic("nobody", "wrong"), 401), ("Bearer s3cret", 401),
                           (basic("ls", "s3cret"), 200)):
        compared.clear()
        resp = client.get("/status", headers={"Authorization": header})
        assert resp.status_code == status, header
        assert [b for _, b in compared] == [b"ls", b"s3cret"], header
