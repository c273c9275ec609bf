"""What Label Studio's prediction writes cost, measured on a real Label Studio.

    python scripts/bench_ls_writes.py --stack 60000 --db postgres [--out benchmark/ls-writes.json]
    python scripts/bench_ls_writes.py --url URL --api-key KEY --project ID

For each plan ``(batch, concurrent requests)`` it imports ``--per-plan`` predictions under a
version of its own (``POST /api/projects/<id>/import/predictions``) and reports predictions per
second; then it times ``PATCH /api/predictions/<id>`` (changing one prediction's score in place)
on ``--patches`` of them, and ``DELETE /api/projects/<id>/model-versions/`` of the probe
versions (which also removes what it made). These are the rates the backend's publishing is
built around (docs/backend.md, "Publishing"): a bulk import is the only cheap write; a change
or deletion of one prediction costs Label Studio a task save. ``--stack`` starts Label Studio
1.23.2 as ``scripts/bench_scale.py`` does (see ``scripts/bench_listing.py``) and stops it after.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.ls_client import LabelStudioClient  # noqa: E402
from scripts.bench_listing import add_target_arguments, open_target  # noqa: E402

#: (predictions per request, requests at once)
PLANS = ((5000, 1), (1000, 1), (2500, 2), (1000, 2))
PROBE = "bench-writes"


def import_rate(ls: LabelStudioClient, pid: int, task_ids: list[int], result: list, *, version: str,
                batch: int, workers: int) -> dict:
    """Import one prediction of ``version`` per task in ``task_ids``, ``batch`` per request,
    ``workers`` requests at once; the figures."""
    chunks = [task_ids[s:s + batch] for s in range(0, len(task_ids), batch)]

    def send(chunk: list[int]) -> int:
        return ls.import_predictions(pid, [{"task": t, "result": result, "score": 0.5, "model_version": version}
                                           for t in chunk], batch=batch)
    t0 = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        created = sum(pool.map(send, chunks))
    seconds = time.monotonic() - t0
    return {"batch": batch, "concurrent": workers, "predictions": created, "seconds": round(seconds, 2),
            "per_second": round(created / seconds, 1)}


def patch_costs(ls: LabelStudioClient, task_ids: list[int], *, version: str) -> dict:
    """Seconds of ``PATCH /api/predictions/<id>`` (a new score) on the prediction of ``version``
    of each task in ``task_ids``."""
    seconds = []
    for tid in task_ids:
        pred = next(p for p in ls.get("/api/predictions/", params={"task": tid}) if p["model_version"] == version)
        t0 = time.monotonic()
        ls.patch(f"/api/predictions/{pred['id']}", {"score": 0.25})
        seconds.append(time.monotonic() - t0)
    return {"count": len(seconds), "median_s": round(statistics.median(seconds), 4),
            "max_s": round(max(seconds), 4)}


def run(ls: LabelStudioClient, pid: int, *, per_plan: int, patches: int) -> dict:
    task_ids = [t["id"] for t in ls.iter_tasks(pid, fields="task_only")]
    if len(task_ids) < per_plan:
        raise ValueError(f"project {pid} has {len(task_ids)} tasks, fewer than --per-plan {per_plan}")
    first = ls.get("/api/tasks", params={"project": pid, "fields": "all", "page_size": 1})["tasks"][0]
    result = first["annotations"][0]["result"] if first.get("annotations") else []
    figures: dict = {"tasks": len(task_ids), "imports": []}
    versions = []
    try:
        for i, (batch, workers) in enumerate(PLANS):
            versions.append(f"{PROBE}-{i}")
            figures["imports"].append(import_rate(ls, pid, task_ids[:per_plan], result, version=versions[-1],
                                                  batch=batch, workers=workers))
            print(figures["imports"][-1], flush=True)
        figures["patch_one_prediction"] = patch_costs(ls, task_ids[:patches], version=versions[0])
        print(figures["patch_one_prediction"], flush=True)
    finally:
        t0 = time.monotonic()
        deleted = sum(ls.delete_model_version(pid, v) for v in versions)
        figures["delete_model_version"] = {"predictions": deleted, "seconds": round(time.monotonic() - t0, 1)}
        print(figures["delete_model_version"], flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_target_arguments(ap, project_help=f"a project with tasks (it gets predictions of versions "
                                          f"'{PROBE}-*', deleted at the end)")
    ap.add_argument("--per-plan", type=int, default=5000, help="predictions per plan (default 5000)")
    ap.add_argument("--patches", type=int, default=30, help="predictions changed in place (default 30)")
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = ap.parse_args(argv)
    if args.per_plan < 1 or not 1 <= args.patches <= args.per_plan:
        ap.error("--per-plan must be positive and --patches between 1 and --per-plan")
    setup, stop = open_target(ap, args, smallest=max(200, args.per_plan))
    try:
        figures = run(LabelStudioClient(args.url, args.api_key, timeout=1800.0), args.project,
                      per_plan=args.per_plan, patches=args.patches)
    finally:
        stop()
    from scripts.bench_measure import machine
    figures.update(command=" ".join(["python", "scripts/bench_ls_writes.py", *(argv or sys.argv[1:])]),
                   date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), machine=machine(),
                   db=args.db if setup else None, import_seconds=setup.get("import_seconds"))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
