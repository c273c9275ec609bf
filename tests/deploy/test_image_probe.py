"""The host-side checks of .ci/docker_build_check.sh (tests/deploy/image_probe.py): its fake Label
Studio answers in Label Studio's shapes, and each check fails with a reason when the backend does
not answer as it should. The checks passing against the real image is the CI script's job."""
from __future__ import annotations

import http.server
import io
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import image_probe as probe  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / "tests" / "fixtures" / "ls-payloads" / "setup.json"


@pytest.fixture
def fake(tmp_path):
    schema = json.loads(SETUP.read_text(encoding="utf-8"))["body"]["schema"]
    state = probe.FakeProject.seeded(token="tok", label_config=schema, summary=tmp_path / "ls.json")
    server = probe.serve_fake_ls(state, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def call(method, url, body=None, token="tok"):
    import urllib.error
    import urllib.request
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Authorization": f"Token {token}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_png_decodes_to_its_value():
    img = Image.open(io.BytesIO(probe.png_gray(123, size=8)))
    assert img.size == (8, 8) and img.mode == "L"
    assert img.getextrema() == (123, 123)


def test_fake_ls_serves_the_project_in_label_studio_shapes(fake):
    state, url = fake
    status, body = call("GET", f"{url}/api/tasks?project=1&fields=all&page=1&page_size=10")
    page = json.loads(body)
    assert status == 200 and page["total"] == probe.TASKS and len(page["tasks"]) == 10
    task = page["tasks"][0]
    assert task["annotations"][0]["result"][0]["value"]["choices"][0] in probe.CHOICES
    assert call("GET", f"{url}/api/tasks?project=1&page=9&page_size=10")[0] == 404
    status, body = call("GET", f"{url}{task['data']['image']}")
    assert status == 200 and Image.open(io.BytesIO(body)).size == (8, 8)
    assert json.loads(call("GET", f"{url}/api/projects/1")[1])["label_config"].startswith("<View>")
    labels = [t["annotations"][0]["result"][0]["value"]["choices"][0] for t in state.tasks.values()]
    assert sorted(set(labels)) == list(probe.CHOICES)


def test_fake_ls_refuses_without_the_token_and_records_what_it_cannot_answer(fake):
    state, url = fake
    assert call("GET", f"{url}/api/projects/1", token="wrong")[0] == 401
    assert call("GET", f"{url}/api/unknown/thing")[0] == 404
    assert json.loads((state.summary).read_text())["unanswered"] == ["GET /api/unknown/thing"]


def test_fake_ls_takes_predictions_and_the_model_version(fake):
    state, url = fake
    assert call("PATCH", f"{url}/api/projects/1", {"model_version": "v1"})[0] == 400
    preds = [{"task": t, "score": 0.5, "model_version": "v1", "result": []} for t in state.tasks]
    status, body = call("POST", f"{url}/api/projects/1/import/predictions", preds + [
        {"task": 1, "score": 2.0, "model_version": "v1", "result": []}])
    assert status == 201 and json.loads(body) == {"created": probe.TASKS}  # the 2.0 is dropped
    assert call("PATCH", f"{url}/api/projects/1", {"model_version": "v1"})[0] == 200
    got = probe.wait_trained("http://127.0.0.1:9", summary=state.summary, timeout=5)
    assert got["model_version"] == "v1" and got["predictions"] == probe.TASKS


def test_wait_trained_fails_without_published_scores(fake):
    state, _ = fake
    with pytest.raises(probe.ProbeError, match="no published scores"):
        probe.wait_trained("http://127.0.0.1:9", summary=state.summary, timeout=0.5)


def _server(status: int, body: dict):
    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def test_wait_health_accepts_up_and_refuses_anything_else():
    server, url = _server(200, {"status": "UP"})
    try:
        assert probe.wait_health(url, pid=None, timeout=5)["status"] == "UP"
    finally:
        server.shutdown()
    server, url = _server(503, {"status": "DOWN"})
    try:
        with pytest.raises(probe.ProbeError, match="did not answer UP.*HTTP 503"):
            probe.wait_health(url, pid=None, timeout=1.5)
    finally:
        server.shutdown()


def test_wait_health_stops_when_the_backend_process_is_gone():
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    with pytest.raises(probe.ProbeError, match="exited before /health answered"):
        probe.wait_health("http://127.0.0.1:9", pid=int(done.stdout), timeout=30)


@pytest.mark.parametrize("status, body, ok", [(200, {"model_version": "m-untrained"}, True),
                                              (200, {}, False), (500, {"error": "x"}, False)])
def test_setup_needs_a_model_version(status, body, ok):
    server, url = _server(status, body)
    try:
        if ok:
            assert probe.post_setup(url, payload=SETUP, ls_url="http://ls", token="t") == body
        else:
            with pytest.raises(probe.ProbeError, match=f"/setup answered HTTP {status}"):
                probe.post_setup(url, payload=SETUP, ls_url="http://ls", token="t")
    finally:
        server.shutdown()


@pytest.mark.parametrize("status, body, ok", [(200, {"status": "ok"}, True),
                                              (200, {"status": "ignored"}, False),
                                              (401, {"error": "auth"}, False)])
def test_start_training_needs_ok(status, body, ok):
    payload = ROOT / "tests" / "fixtures" / "ls-payloads" / "webhook-start-training.json"
    server, url = _server(status, body)
    try:
        if ok:
            assert probe.start_training(url, payload=payload) == body
        else:
            with pytest.raises(probe.ProbeError, match=f"START_TRAINING answered HTTP {status}"):
                probe.start_training(url, payload=payload)
    finally:
        server.shutdown()
