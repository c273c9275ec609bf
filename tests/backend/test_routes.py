"""Every route, fed with the requests Label Studio 1.23.2 really sent (tests/fixtures/ls-payloads)."""
from __future__ import annotations

import base64
import time


def post(client, path, body, **headers):
    return client.post(path, json=body, headers=headers)


def basic(user, pw):
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


def test_health_answers_up(client, h):
    req = h.payload("health.json")
    resp = client.get(req["path"])
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "UP"


def test_setup_with_captured_body_returns_model_version_fast(client, h):
    body = h.payload("setup.json")["body"]
    t0 = time.perf_counter()
    resp = post(client, "/setup", body)
    elapsed = time.perf_counter() - t0
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["model_version"].startswith("suspicion-")
    assert elapsed < 1.0  # generous here; the benchmark measures it properly


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


def test_predict_before_training_gives_empty_results_in_order(client, h):
    for name in ("predict-dm-action.json", "predict-interactive.json", "predict-test-random.json",
                 "predict-task-open.json", "predict-next-task.json", "predict-dm-task-list.json"):
        body = h.payload(name)["body"]
        resp = post(client, "/predict", body)
        assert resp.status_code == 200, (name, resp.get_json())
        results = resp.get_json()["results"]
        assert len(results) == len(body["tasks"])
        for r in results:
            assert r["result"] == [] and 0.0 <= r["score"] <= 1.0 and r["model_version"]


def test_webhooks_captured_are_acknowledged(client, h):
    post(client, "/setup", h.payload("setup.json")["body"])
    for name in ("webhook-annotation-created.json", "webhook-annotation-updated.json",
                 "webhook-annotations-deleted.json", "webhook-tasks-created.json",
                 "webhook-tasks-created-json-import.json", "webhook-tasks-created-storage-sync.json",
                 "webhook-tasks-deleted.json", "webhook-project-updated.json",
                 "webhook-start-training.json"):
        req = h.payload(name)
        t0 = time.perf_counter()
        resp = post(client, "/webhook", req["body"])
        assert time.perf_counter() - t0 < 0.5, name
        assert resp.status_code == 200, (name, resp.get_json())
        assert resp.get_json()["action"] == req["body"]["action"]


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


def test_basic_auth_required_where_label_studio_sends_it(make_app, h):
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
