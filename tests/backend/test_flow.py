"""Training, publishing, feedback and recovery against a Label Studio faked at the HTTP level."""
from __future__ import annotations

import json

import pytest

SETUP = {"project": "1.1795607766", "hostname": "http://localhost:53237", "access_token": "x",
         "extra_params": None}


def setup_and_train(client, fake_ls, h):
    """Connect the backend (/setup), then press Start Training, as the import script does."""
    resp = client.post("/setup", json={**SETUP, "schema": h.CONFIG_XML})
    assert resp.status_code == 200
    assert client.post("/webhook", json=h.payload("webhook-start-training.json")["body"]).status_code == 200
    model = client.application.extensions["suspicion"].get(1)
    assert h.wait_for(lambda: fake_ls.model_version is not None and model.worker.idle()), \
        model.status()
    return model


def annotation_webhook(client, ann, action="ANNOTATION_UPDATED"):
    return client.post("/webhook", json={"action": action, "annotation": ann,
                                         "project": {"id": 1}, "task": {"id": ann["task"]}})


def test_connecting_does_not_train_and_start_training_trains_once(client, fake_ls, h):
    h.seed(fake_ls, n=12, flipped=(3,))
    before = h.FakeRanker.instances
    assert client.post("/setup", json={**SETUP, "schema": h.CONFIG_XML}).status_code == 200
    assert client.post("/setup", json={**SETUP, "schema": h.CONFIG_XML}).status_code == 200
    model = client.application.extensions["suspicion"].get(1)
    assert model.worker.wait_idle() and h.FakeRanker.instances == before
    assert model.store.last_job("train") is None
    model = setup_and_train(client, fake_ls, h)
    assert h.FakeRanker.instances == before + 1
    assert [r[0] for r in model.store._q("SELECT kind FROM jobs")] == ["train"]


def test_training_publishes_every_task(client, fake_ls, h):
    h.seed(fake_ls, n=12, flipped=(3,))
    model = setup_and_train(client, fake_ls, h)
    version = fake_ls.model_version
    assert version.startswith("suspicion-dfaulo-") and version.endswith("-v1")
    current = fake_ls.current()
    assert sorted(current) == list(range(1, 13))
    assert all(0.0 <= s <= 1.0 for s in current.values())
    assert max(current, key=current.get) == 3  # the flipped label ranks first
    pred = next(p for p in fake_ls.predictions if p["task"] == 3)
    assert pred["result"][0]["from_name"] == "label" and pred["result"][0]["to_name"] == "image"
    assert pred["result"][0]["type"] == "choices"
    assert pred["result"][0]["value"]["choices"] == ["0"]  # task 3 looks like class 0
    # media came with the token; /setup's hostname (localhost) was not used
    assert all(a == "Token legacy-token-123" for a in fake_ls.auth_seen)
    # /setup now reports the published version, /predict answers from the store
    assert client.post("/setup", json={**SETUP, "schema": h.CONFIG_XML}).get_json()["model_version"] == version
    tasks = [{"id": t, "data": {"image": f"/data/upload/1/img{t}.png"}} for t in (5, 3, 1)]
    res = client.post("/predict", json={"tasks": tasks, "project": "1.1"}).get_json()["results"]
    assert [r["score"] for r in res] == [current[5], current[3], current[1]]
    assert all(r["model_version"] == version for r in res)
    st = client.get("/status?project=1").get_json()
    assert st["tasks"] == 12 and st["scored"] == 12 and st["last_training"]["state"] == "done"
    assert client.get("/versions").get_json()["versions"] == [version]


def test_verdicts_refit_sink_reviewed_and_replace_version(client, fake_ls, h):
    h.seed(fake_ls, n=12, flipped=(3,))
    model = setup_and_train(client, fake_ls, h)
    v1 = fake_ls.model_version
    # reviewer fixes task 3 (fault) and confirms task 4 by updating without change (clean)
    fix = fake_ls.annotate(3, "0", ann_id=1003, updated_at="2026-02-01T00:00:00Z")
    same = fake_ls.annotate(4, "1", ann_id=1004, updated_at="2026-02-01T00:00:01Z")
    for ann in (fix, same):
        assert annotation_webhook(client, ann).status_code == 200
    assert h.wait_for(lambda: fake_ls.model_version != v1 and model.worker.idle())
    v2 = fake_ls.model_version
    assert v2.endswith("-v2") and v1 in fake_ls.deleted_versions
    assert not any(p["model_version"] == v1 for p in fake_ls.predictions)
    current = fake_ls.current()
    assert current[3] == 0.0 and current[4] == 0.0  # reviewed tasks sink
    assert len(current) == 12
    ranker = model.ranker()
    assert ranker.verdicts == {model.store.task(3).item_index: True, model.store.task(4).item_index: False}
    st = model.status()
    assert st["verdicts"] == 2 and st["pending_verdicts"] == 0 and st["reviewed"] == 2


def test_same_event_twice_counts_once(client, fake_ls, h):
    h.seed(fake_ls, n=9)
    model = setup_and_train(client, fake_ls, h)
    ann = fake_ls.annotate(2, "0", ann_id=2002, updated_at="2026-02-01T00:00:00Z")
    for _ in range(3):
        annotation_webhook(client, ann, "ANNOTATION_CREATED")
        assert h.wait_for(lambda: not model.store.take_hints(1))
    assert h.wait_for(lambda: model.worker.idle())
    assert model.store.counts()["verdicts"] == 1


def test_forged_webhook_plants_nothing(client, fake_ls, h):
    h.seed(fake_ls, n=9)
    model = setup_and_train(client, fake_ls, h)
    v1 = fake_ls.model_version
    # claims task 2 was relabeled; Label Studio knows no such annotation
    forged = {"id": 999, "task": 2, "project": 1, "updated_at": "x",
              "result": [{"from_name": "label", "type": "choices", "value": {"choices": ["1"]}}]}
    annotation_webhook(client, forged)
    # claims an existing annotation says something it does not
    real = fake_ls.annotations[1005]
    lie = dict(real, result=[{"from_name": "label", "type": "choices", "value": {"choices": ["2"]}}])
    annotation_webhook(client, lie)
    assert h.wait_for(lambda: model.worker.idle())
    # the re-read finds the untouched imported annotation the ranker was trained on: that is
    # no reviewer's save, so neither webhook makes a verdict and nothing is republished
    assert model.store.latest_verdicts() == []
    assert fake_ls.model_version == v1 and model.status()["reviewed"] == 0


def test_verdict_batch_waits_for_count_or_quiet(make_app, fake_ls, h):
    app = make_app(verdict_batch=2, verdict_quiet_seconds=30)
    client = app.test_client()
    h.seed(fake_ls, n=9)
    model = setup_and_train(client, fake_ls, h)
    v1 = fake_ls.model_version
    annotation_webhook(client, fake_ls.annotate(1, "2", ann_id=3001, updated_at="t1"))
    assert h.wait_for(lambda: model.store.counts()["verdicts"] == 1)
    assert not h.wait_for(lambda: fake_ls.model_version != v1, timeout=0.5)  # 1 < batch, not quiet
    annotation_webhook(client, fake_ls.annotate(2, "0", ann_id=3002, updated_at="t2"))
    assert h.wait_for(lambda: fake_ls.model_version != v1)


def test_annotations_deleted_forgets_verdicts(client, fake_ls, h):
    h.seed(fake_ls, n=9)
    model = setup_and_train(client, fake_ls, h)
    ann = fake_ls.annotate(2, "0", ann_id=4002, updated_at="t1")
    annotation_webhook(client, ann)
    assert h.wait_for(lambda: model.store.counts()["verdicts"] == 1 and model.worker.idle())
    v2 = fake_ls.model_version
    deleted = {"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 4002}], "project": {"id": 1}}
    # a deletion Label Studio does not confirm (the annotation still exists) is ignored
    assert client.post("/webhook", json=deleted).get_json()["queued"] == "deletion check"
    assert h.wait_for(lambda: not model.store.take_hints(1) and model.worker.idle())
    assert model.store.counts()["verdicts"] == 1 and fake_ls.model_version == v2
    del fake_ls.annotations[4002]  # now Label Studio answers 404 for it
    assert client.post("/webhook", json=deleted).status_code == 200
    assert h.wait_for(lambda: fake_ls.model_version != v2 and model.worker.idle())
    assert model.store.counts()["verdicts"] == 0
    assert model.store.counts()["reviewed"] == 0
    assert model.ranker().verdicts == {}


def test_tasks_created_are_scored_and_deleted_forgotten(client, fake_ls, h):
    h.seed(fake_ls, n=9)
    model = setup_and_train(client, fake_ls, h)
    version = fake_ls.model_version
    fake_ls.add_task(50, label="2", value=235)
    fake_ls.add_task(51, label=None, value=20)
    body = h.payload("webhook-tasks-created.json")["body"]
    body = {**body, "tasks": [{"id": 50}, {"id": 51}]}
    assert client.post("/webhook", json=body).status_code == 200
    assert h.wait_for(lambda: 50 in fake_ls.current() and 51 in fake_ls.current())
    assert fake_ls.model_version == version  # pushed under the current version
    assert fake_ls.current()[51] == 0.0  # unlabeled: nothing to doubt
    assert model.store.task(50).label == "2"
    # a forged TASKS_CREATED for known tasks re-scores nothing and keeps their state
    before = fake_ls.import_calls
    assert client.post("/webhook", json={**body, "tasks": [{"id": 50}, {"id": 1}]}).status_code == 200
    assert h.wait_for(lambda: not model.store.take_hints(1) and model.worker.idle())
    assert fake_ls.import_calls == before
    # deletions count only for tasks Label Studio no longer has (7 still exists)
    del fake_ls.tasks[50]
    resp = client.post("/webhook", json={"action": "TASKS_DELETED", "tasks": [{"id": 50}, {"id": 7}],
                                         "project": {"id": 1}})
    assert resp.get_json()["queued"] == "deletion check"
    assert h.wait_for(lambda: model.store.task(50) is None and model.worker.idle())
    assert model.store.task(7) is not None


def test_a_retrain_lists_only_the_changed_tasks(client, fake_ls, h):
    h.seed(fake_ls, n=12, flipped=(3,))
    model = setup_and_train(client, fake_ls, h)
    v1 = fake_ls.model_version
    assert model.store.get("last_training")["listing"] == "full"
    fake_ls.annotate(3, "0", ann_id=1003, updated_at="2026-05-01T00:00:00Z")  # corrected, no webhook
    assert client.post("/webhook", json=h.payload("webhook-start-training.json")["body"]).status_code == 200
    assert h.wait_for(lambda: fake_ls.model_version != v1 and model.worker.idle()), model.status()
    report = model.store.get("last_training")
    # task 3, and 12: saved within GAP before the first listing began (the fake's clock stands
    # still between changes)
    assert report["listing"] == "changed" and report["listed"] == 2 and report["tasks"] == 12
    assert model.store.task(3).label == "0" and report["recovered_verdicts"] == 1
    assert sorted(fake_ls.current()) == list(range(1, 13))


def test_predict_scores_unknown_tasks_with_current_model(client, fake_ls, h):
    h.seed(fake_ls, n=9)
    setup_and_train(client, fake_ls, h)
    fake_ls.add_task(60, label="0", value=235)  # bright image labeled dark: suspicious
    task = dict(fake_ls.tasks[60])
    res = client.post("/predict", json={"tasks": [task, {"id": 1, "data": {"image": "/data/upload/1/img1.png"}}],
                                        "project": "1.1"}).get_json()["results"]
    assert res[0]["result"][0]["value"]["choices"] == ["2"] and res[0]["score"] > 0.5
    assert res[1]["model_version"] == fake_ls.model_version


def test_start_training_during_a_job_is_queued_once(client, fake_ls, h):
    h.seed(fake_ls, n=9)
    model = setup_and_train(client, fake_ls, h)
    body = h.payload("webhook-start-training.json")["body"]
    gate = __import__("threading").Event()
    original = h.FakeRanker.fit.__func__

    def slow_fit(cls, *a, **k):
        gate.wait(5)
        return original(cls, *a, **k)
    before = h.FakeRanker.instances
    h.FakeRanker.fit = classmethod(slow_fit)
    try:
        client.post("/webhook", json=body)
        assert h.wait_for(lambda: model.worker.state == "training")
        for _ in range(5):
            assert client.post("/webhook", json=body).status_code == 200
            assert client.get("/health").status_code == 200  # answers during training
        gate.set()
        assert h.wait_for(lambda: model.worker.idle() and h.FakeRanker.instances == before + 2)
        assert not h.wait_for(lambda: h.FakeRanker.instances > before + 2, timeout=0.5)
    finally:
        h.FakeRanker.fit = classmethod(original)


def test_unreadable_image_marks_task_not_job(client, fake_ls, h):
    h.seed(fake_ls, n=9)
    fake_ls.images["/data/upload/1/img4.png"] = b"not an image"
    fake_ls.tasks[5]["data"]["image"] = "http://evil.example/steal.png"  # other host: refused
    model = setup_and_train(client, fake_ls, h)
    assert sorted(fake_ls.current()) == [1, 2, 3, 6, 7, 8, 9]
    st = model.status()
    assert st["unreadable"] == 2 and st["last_training"]["state"] == "done"


def test_scores_outside_unit_interval_are_caught(client, fake_ls, h):
    h.seed(fake_ls, n=9)
    model = setup_and_train(client, fake_ls, h)
    from backend.ls_client import LabelStudioError
    with pytest.raises(LabelStudioError, match="created 0 of 1"):
        model.client().import_predictions(1, [{"task": 1, "result": [], "score": 1.5,
                                               "model_version": "x"}])


def test_restart_comes_back_with_same_version_and_scores(make_app, fake_ls, h):
    app1 = make_app()
    c1 = app1.test_client()
    h.seed(fake_ls, n=9, flipped=(2,))
    setup_and_train(c1, fake_ls, h)
    version = fake_ls.model_version
    tasks = [{"id": t, "data": {"image": "x"}} for t in range(1, 10)]
    before = c1.post("/predict", json={"tasks": tasks, "project": "1.1"}).get_json()
    app1.extensions["suspicion"].stop()
    app2 = make_app()
    c2 = app2.test_client()
    assert c2.post("/setup", json={**SETUP, "schema": h.CONFIG_XML}).get_json()["model_version"] == version
    after = c2.post("/predict", json={"tasks": tasks, "project": "1.1"}).get_json()
    assert after == before
    assert c2.get("/status?project=1").get_json()["model_version"] == version


def test_ranker_saved_in_an_older_format_is_retrained_not_a_crash(make_app, fake_ls, h, tmp_path):
    app1 = make_app()
    c1 = app1.test_client()
    h.seed(fake_ls, n=9, flipped=(2,))
    model = setup_and_train(c1, fake_ls, h)
    tasks = [{"id": t, "data": {"image": "x"}} for t in range(1, 10)]
    before = c1.post("/predict", json={"tasks": tasks, "project": "1.1"}).get_json()
    app1.extensions["suspicion"].stop()
    meta = model.directory / "ranker" / "meta.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "format": 0}))   # an older backend's
    app2 = make_app()
    c2 = app2.test_client()
    assert c2.post("/predict", json={"tasks": tasks, "project": "1.1"}).get_json() == before  # stored scores
    model2 = app2.extensions["suspicion"].get(1)
    assert model2.ranker() is None
    assert h.wait_for(lambda: len([r for r in model2.store._q("SELECT state FROM jobs WHERE kind='train'")
                                   if r[0] == "done"]) == 2 and model2.worker.idle(), timeout=30)
    assert model2.ranker() is not None and json.loads(meta.read_text()).get("format", 1) == 1


def test_job_left_running_is_rerun_on_restart(make_app, fake_ls, h, tmp_path):
    from backend.store import Store
    h.seed(fake_ls, n=9)
    store = Store(tmp_path / "models" / "1" / "state.sqlite3")
    store.put("label_config", h.CONFIG_XML)
    store.start_job("train")  # a process died here
    store.close()
    app = make_app()
    assert app.test_client().get("/health").status_code == 200  # first request starts workers
    assert h.wait_for(lambda: fake_ls.model_version is not None)
    model = app.extensions["suspicion"].get(1)
    assert h.wait_for(model.worker.idle)
    states = [r[0] for r in model.store._q("SELECT state FROM jobs ORDER BY id")]
    assert states[0] == "interrupted" and states[-1] == "done"


def test_personal_access_token_is_exchanged(make_app, rsps, h):
    import base64
    import time

    import responses as r

    def jwt(payload):
        enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")
        return f"{enc({'alg': 'HS256', 'typ': 'JWT'})}.{enc(payload)}.sig"
    refresh = jwt({"token_type": "refresh", "exp": time.time() + 1e6})
    access = jwt({"token_type": "access", "exp": time.time() + 300})
    rsps.add(r.POST, f"{h.LS}/api/token/refresh", json={"access": access},
             match=[r.matchers.json_params_matcher({"refresh": refresh})])
    rsps.add(r.GET, f"{h.LS}/api/annotations/5", json={"id": 5},
             match=[r.matchers.header_matcher({"Authorization": f"Bearer {access}"})])
    app = make_app(label_studio_api_key=refresh)
    model = app.extensions["suspicion"].get(1)
    assert model.client().get_annotation(5) == {"id": 5}


def test_failed_first_training_is_retried_when_tasks_arrive(client, fake_ls, h):
    resp = client.post("/setup", json={**SETUP, "schema": h.CONFIG_XML})  # project still empty
    assert resp.status_code == 200
    assert client.post("/webhook", json=h.payload("webhook-start-training.json")["body"]).status_code == 200
    model = client.application.extensions["suspicion"].get(1)
    assert h.wait_for(lambda: (model.store.last_job("train") or {}).get("state") == "failed")
    assert "no tasks" in model.status()["last_error"]
    # /setup and /predict right after a failure do not start job after job
    client.post("/setup", json={**SETUP, "schema": h.CONFIG_XML})
    assert not model.maybe_train()
    h.seed(fake_ls, n=9)
    client.post("/webhook", json={"action": "TASKS_CREATED", "project": {"id": 1},
                                  "tasks": [{"id": t} for t in range(1, 10)]})
    assert h.wait_for(lambda: fake_ls.model_version is not None and model.worker.idle())
    assert model.status()["last_error"] is None
