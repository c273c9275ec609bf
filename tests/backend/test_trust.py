"""What the backend trusts: forged hints change nothing, the API key goes only where it is
meant to, bad project ids and hostile images are refused, and broken state recovers."""
from __future__ import annotations

import io
import sqlite3
import struct
import threading
import zlib

import pytest

from backend.hints import is_newer_save
from backend.images import ImageSource, header_error, load_images
from backend.model import parse_project_id
from backend.store import Store
from backend.tasks import TaskRow

from .test_flow import SETUP, setup_and_train


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header(width: int, height: int) -> bytes:
    """A PNG of a hundred bytes that declares ``width`` x ``height`` pixels (a bomb's header)."""
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(b"\0" * 100)) + _chunk(b"IEND", b""))


@pytest.mark.parametrize("value", ["1.abc", "１", "true", True, 2**63, "9" * 30, 0, -3, "", None,
                                   "1.2.3", " 1", {"id": "x"}])
def test_project_ids_are_ascii_digits_in_range(value):
    with pytest.raises(ValueError):
        parse_project_id(value)


@pytest.mark.parametrize("value, expected", [("1.1795607766", 1), ("42", 42), (7, 7), ({"id": 3}, 3),
                                             (2**31 - 1, 2**31 - 1)])
def test_project_ids_label_studio_sends_are_accepted(value, expected):
    assert parse_project_id(value) == expected


def test_a_verdict_needs_a_save_after_the_trained_annotation():
    row = TaskRow(1, "/1.png", "cat", annotation_id=10, annotated_at="2026-01-01T00:00:00Z",
                  item_index=0, score=0.5, predicted=0)
    assert not is_newer_save(row, annotation_id=10, updated_at="2026-01-01T00:00:00Z")  # untouched
    assert not is_newer_save(row, annotation_id=9, updated_at="2025-12-31T00:00:00Z")   # older one
    assert is_newer_save(row, annotation_id=10, updated_at="2026-01-02T08:00:00.123456Z")
    assert is_newer_save(row, annotation_id=11, updated_at="2026-01-01T00:00:00Z")
    assert is_newer_save(row._replace(annotation_id=None, annotated_at=None), annotation_id=10,
                         updated_at="x")  # state written before annotations were recorded


def test_configured_key_goes_only_to_label_studio_url(make_app, h):
    app = make_app()
    model = app.extensions["suspicion"].get(1)
    model.setup(h.CONFIG_XML, hostname="http://attacker.test", access_token="theirs")
    client = model.client()
    assert client.url == h.LS and client.auth_header() == {"Authorization": "Token legacy-token-123"}


def test_without_label_studio_url_only_the_setup_token_is_used(make_app, h):
    app = make_app(label_studio_url="")
    model = app.extensions["suspicion"].get(1)
    model.setup(h.CONFIG_XML, hostname="http://ls-a.test", access_token="token-a")
    assert model.client().auth_header() == {"Authorization": "Token token-a"}
    # another /setup naming another host without a token: the configured key is never sent there
    model.setup(None, hostname="http://elsewhere.test")
    from backend.ls_client import LabelStudioError
    with pytest.raises(LabelStudioError, match="not reachable"):
        model.client()
    model.setup(None, hostname="http://ls-b.test", access_token="token-b")
    assert model.client().url == "http://ls-b.test"
    assert model.client().auth_header() == {"Authorization": "Token token-b"}


def test_decompression_bombs_and_header_only_files_are_refused_before_decoding():
    assert "image refused" in header_error(_png_header(20000, 20000))
    assert "over the" in header_error(_png_header(12000, 12000))
    assert header_error(b"\x89PNG\r\n\x1a\n" + b"\0" * 37) is not None  # a 45-byte header
    from PIL import Image
    buf = io.BytesIO()
    Image.new("L", (8, 8), 100).save(buf, format="PNG")
    blobs = {"/ok": buf.getvalue(), "/bomb": _png_header(20000, 20000), "/cut": buf.getvalue()[:40]}

    class Client:
        def download(self, url):
            return blobs[url]
    got = load_images(list(blobs), source=ImageSource(Client()))
    assert got.x.shape == (1, 1, 28, 28) and got.errors[0] is None and got.channels == 1
    assert "refused" in got.errors[1] and "not a readable image" in got.errors[2]


def test_a_bomb_in_the_project_marks_its_task_and_training_goes_on(client, fake_ls, h):
    h.seed(fake_ls, n=9)
    fake_ls.images["/data/upload/1/img4.png"] = _png_header(20000, 20000)
    model = setup_and_train(client, fake_ls, h)
    assert sorted(fake_ls.current()) == [1, 2, 3, 5, 6, 7, 8, 9]
    assert model.status()["unreadable"] == 1
    # /predict answers the unreadable task without fetching its image again
    fetched = sum(1 for a in fake_ls.auth_seen)
    res = client.post("/predict", json={"tasks": [{"id": 4, "data": {"image": "/data/upload/1/img4.png"}}],
                                        "project": "1.1"}).get_json()["results"]
    assert res[0]["result"] == [] and len(fake_ls.auth_seen) == fetched


def test_fewer_choices_in_a_label_config_never_breaks_predict(client, fake_ls, h):
    h.seed(fake_ls, n=9, flipped=())
    model = setup_and_train(client, fake_ls, h)
    two = h.CONFIG_XML.replace('<Choice value="2"/>', "")
    tasks = [{"id": t, "data": {"image": f"/data/upload/1/img{t}.png"}} for t in range(1, 10)]
    for _ in range(2):  # the new config is stored: the second call sees it too
        resp = client.post("/predict", json={"tasks": tasks, "project": "1.1", "label_config": two})
        assert resp.status_code == 200
        results = resp.get_json()["results"]
        assert all(r["result"] == [] for t, r in zip(range(1, 10), results) if t % 3 == 2)
        assert all(r["result"][0]["value"]["choices"][0] in ("0", "1")
                   for t, r in zip(range(1, 10), results) if t % 3 != 2)
    assert model.store.last_job("train") is not None  # a retrain was queued
    assert h.wait_for(lambda: len(model.store._q("SELECT id FROM jobs WHERE kind='train'")) == 2
                      and model.worker.idle())


def test_a_truncated_ranker_file_is_reported_and_retrained(make_app, fake_ls, h):
    app1 = make_app()
    c1 = app1.test_client()
    h.seed(fake_ls, n=9, flipped=(2,))
    model = setup_and_train(c1, fake_ls, h)
    app1.extensions["suspicion"].stop()
    weights = model.directory / "ranker" / "fake.npz"
    weights.write_bytes(weights.read_bytes()[:40])
    app2 = make_app()
    model2 = app2.extensions["suspicion"].get(1)
    assert model2.ranker() is None
    assert "cannot be used" in model2.status()["ranker_error"]
    assert h.wait_for(lambda: model2.ranker() is not None and model2.worker.idle(), timeout=30)
    assert "ranker_error" not in model2.status()


def test_a_version_is_numbered_once_and_an_orphaned_push_is_cleaned_up(tmp_path):
    store = Store(tmp_path / "s.sqlite3")
    v1 = store.begin_version(method="m", kind="train", stamp="T")
    store.add_version(v1, pushed=3)
    v2 = store.begin_version(method="m", kind="feedback", stamp="T")  # the process dies mid-push
    store.close()
    store = Store(tmp_path / "s.sqlite3")
    v3 = store.begin_version(method="m", kind="feedback", stamp="T")
    assert (v1, v2, v3) == ("suspicion-m-T-v1", "suspicion-m-T-v2", "suspicion-m-T-v3")
    assert store.old_versions() == [v2]  # v2's predictions go; v3 is being pushed
    store.add_version(v3, pushed=3)
    assert store.old_versions() == [v1, v2]
    assert store.get("model_version") == v3


def test_a_save_whose_webhook_was_lost_is_recovered_by_the_next_training(client, fake_ls, h):
    h.seed(fake_ls, n=9, flipped=(3,))
    model = setup_and_train(client, fake_ls, h)
    fake_ls.annotate(3, "0", ann_id=5003, updated_at="2026-02-01T00:00:00Z")  # no webhook arrives
    assert client.post("/webhook", json=h.payload("webhook-start-training.json")["body"]).status_code == 200
    assert h.wait_for(lambda: (model.store.get("last_training") or {}).get("recovered_verdicts") == 1
                      and model.worker.idle())
    assert [(v.task_id, v.label) for v in model.store.latest_verdicts()] == [(3, "0")]
    assert fake_ls.current()[3] == 0.0  # reviewed: sinks
    # the next training finds nothing new to recover
    assert client.post("/webhook", json=h.payload("webhook-start-training.json")["body"]).status_code == 200
    assert h.wait_for(lambda: len(model.store._q("SELECT id FROM jobs WHERE kind='train'")) == 3
                      and model.worker.idle())
    assert model.store.get("last_training")["recovered_verdicts"] == 0


def test_failures_back_off_and_a_success_resets(make_app, monkeypatch):
    app = make_app()
    worker = app.extensions["suspicion"].get(1).worker
    waits, here, real_wait = [], threading.current_thread(), worker._cond.wait

    def wait(timeout=None):  # record this thread's back-off waits; the worker's own loop waits on
        if threading.current_thread() is not here:
            return real_wait(timeout)
        waits.append(timeout)
    monkeypatch.setattr(worker._cond, "wait", wait)

    def fail():
        raise OSError("connection refused")
    for _ in range(8):
        assert not worker._run("feedback", fail)
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert worker._run("feedback", lambda: {})
    assert not worker._run("feedback", fail)
    assert waits[-1] == 1.0


def test_oversized_and_deeply_nested_bodies_are_refused(make_app):
    client = make_app(max_request_bytes=4096).test_client()
    big = {"action": "ANNOTATION_CREATED", "project": {"id": 1}, "pad": "x" * 10_000}
    resp = client.post("/webhook", json=big)
    assert resp.status_code == 413 and "error" in resp.get_json()
    deep = "[" * 100_000 + "]" * 100_000
    resp = make_app().test_client().post("/webhook", data=deep, content_type="application/json")
    assert resp.status_code == 400 and "nested too deeply" in resp.get_json()["error"]


def test_versions_do_not_show_the_server_folders(client, fake_ls, h):
    h.seed(fake_ls, n=9)
    setup_and_train(client, fake_ls, h)
    body = client.get("/versions").get_json()
    assert list(body) == ["versions"] and body["versions"] == [fake_ls.model_version]


def test_requests_for_projects_label_studio_lacks_create_nothing(client, fake_ls, h, tmp_path):
    setup = h.payload("setup.json")["body"]
    predict = h.payload("predict-dm-action.json")["body"]
    for k in range(2, 40):
        assert client.post("/setup", json={**setup, "project": f"{k}.1"}).status_code == 404
        assert client.post("/predict", json={**predict, "project": f"{k}.1",
                                             "label_config": h.CONFIG_XML}).status_code == 404
        assert client.post("/setup", json={"project": f"{k}.1", "schema": "<View"}).status_code == 422
    assert not any((tmp_path / "models").glob("*/state.sqlite3"))
    assert client.application.extensions["suspicion"].all() == []
    assert client.post("/setup", json=setup).status_code == 200  # project 1 exists in Label Studio
    assert [m.project_id for m in client.application.extensions["suspicion"].all()] == [1]


def test_an_unreachable_label_studio_is_named_not_a_crash(make_app, h):
    client = make_app(label_studio_url="http://127.0.0.1:9").test_client()  # nothing listens on 9
    resp = client.post("/setup", json=h.payload("setup.json")["body"])
    assert resp.status_code == 503 and "cannot check project 1" in resp.get_json()["error"]


def test_at_most_max_open_projects_are_open(make_app, fake_ls, h, tmp_path):
    for _ in range(4):
        fake_ls.create_project("more", h.CONFIG_XML)
    client = make_app(max_open_projects=2).test_client()
    setup = h.payload("setup.json")["body"]
    for pid in (1, 2, 3, 4):
        assert client.post("/setup", json={**setup, "project": f"{pid}.1"}).status_code == 200
    registry = client.application.extensions["suspicion"]
    assert [m.project_id for m in registry.all()] == [3, 4]
    assert len(list((tmp_path / "models").glob("*/state.sqlite3"))) == 4  # closed, not forgotten
    # a closed project opens again from its state on disk
    assert client.post("/setup", json={"project": "1.1"}).status_code == 200
    assert [m.project_id for m in registry.all()] == [1, 4]


def test_image_urls_that_are_api_paths_are_not_fetched_with_the_token(fake_ls, h):
    from backend.ls_client import LabelStudioClient
    client = LabelStudioClient(h.LS, "legacy-token-123")
    for url in ("/api/projects/1", f"{h.LS}/api/current-user/whoami", "/api/../api/projects"):
        with pytest.raises(ValueError, match="API path"):
            client.download(url)
    assert not fake_ls.calls_to("GET", "/api/projects/1")


def test_a_start_training_survives_an_unwritable_store(client, fake_ls, h, monkeypatch):
    h.seed(fake_ls, n=9)
    assert client.post("/setup", json={**SETUP, "schema": h.CONFIG_XML}).status_code == 200
    model = client.application.extensions["suspicion"].get(1)
    real_start, failures = model.store.start_job, []

    def full_disk(kind):
        if len(failures) < 2:
            failures.append(kind)
            raise sqlite3.OperationalError("database or disk is full")
        return real_start(kind)
    monkeypatch.setattr(model.store, "start_job", full_disk)
    answer = client.post("/webhook", json=h.payload("webhook-start-training.json")["body"]).get_json()
    assert answer["queued"] == "training"
    assert h.wait_for(lambda: failures == ["train", "train"] and "disk is full" in
                      (model.status()["last_error"] or ""), timeout=10)
    assert h.wait_for(lambda: fake_ls.model_version is not None and model.worker.idle(), timeout=20)
    assert model.status()["last_error"] is None


def test_a_predict_naming_many_unknown_tasks_lists_the_project_once(make_app, fake_ls, h):
    h.seed(fake_ls, n=9)
    client = make_app(predict_inline_limit=5).test_client()
    model = setup_and_train(client, fake_ls, h)
    for t in range(100, 1300):
        fake_ls.add_task(t, label="1", value=128)
    listings = len(fake_ls.calls_to("GET", "/api/tasks"))
    tasks = [{"id": t, "data": {"image": f"/data/upload/1/img{t}.png"}} for t in range(100, 1300)]
    assert client.post("/predict", json={"tasks": tasks, "project": "1.1"}).status_code == 200
    assert h.wait_for(lambda: model.store.counts()["scored"] == 9 + 1200 and model.worker.idle(), timeout=30)
    assert len(fake_ls.calls_to("GET", "/api/tasks")) - listings <= 2  # one listing (two pages at most)


def test_a_failed_publish_after_a_fit_publishes_again_without_refitting(client, fake_ls, h):
    from werkzeug import Response
    h.seed(fake_ls, n=9)
    refusals = []
    real = fake_ls._import_predictions

    def busy_once(request, pid):  # Label Studio too busy for the first push
        if not refusals:
            refusals.append(pid)
            return Response("busy", status=503)
        return real(request, pid)
    fake_ls._import_predictions = busy_once
    before = h.FakeRanker.instances
    assert client.post("/setup", json={**SETUP, "schema": h.CONFIG_XML}).status_code == 200
    assert client.post("/webhook", json=h.payload("webhook-start-training.json")["body"]).status_code == 200
    model = client.application.extensions["suspicion"].get(1)
    assert h.wait_for(lambda: fake_ls.model_version is not None and model.worker.idle(), timeout=20)
    assert refusals and h.FakeRanker.instances == before + 1  # one fit, published on the second try
    assert sorted(fake_ls.current()) == list(range(1, 10))
    jobs = [r[0] for r in model.store._q("SELECT kind || ':' || state FROM jobs ORDER BY id")]
    # the cleanup then retires the version numbered for the refused push (it has no predictions)
    assert jobs == ["train:failed", "feedback:done", "cleanup:done"]
    assert [v["state"] for v in model.store.versions()] == ["current", "deleted"]
