"""Time the ways of listing a project's tasks with their annotations against a real Label Studio.

    python scripts/bench_listing.py --url URL --api-key KEY --project ID [--out benchmark/listing.json]

Each variant reads the whole project (or, for ``changed_since``, the tasks updated after a
moment) and is checked against what a training job needs: every labeled task with ``data`` and
its newest annotation (``id``, ``updated_at``, ``result``, ``was_cancelled``). The reference is
``GET /api/tasks?fields=all`` with pages of 1,000 (the listing the backend used until now).
``scripts/bench_scale.py --listing`` starts Label Studio, imports a project and runs this.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.ls_client import LabelStudioClient, changed_since_query  # noqa: E402

ANNOTATION_KEYS = ("id", "updated_at", "result", "was_cancelled")


def newest_annotations(tasks: Iterable[dict]) -> dict[int, dict]:
    """``{task id: {"data": ..., "annotation": the newest annotation's ANNOTATION_KEYS or None}}``."""
    out = {}
    for task in tasks:
        anns = [a for a in task.get("annotations") or [] if isinstance(a, dict)]
        best = max(anns, key=lambda a: (str(a.get("updated_at") or ""), a.get("id") or 0), default=None)
        out[int(task["id"])] = {
            "data": task.get("data"),
            "annotation": None if best is None else {k: best.get(k) for k in ANNOTATION_KEYS}}
    return out


def completeness(got: dict[int, dict], reference: dict[int, dict]) -> dict:
    """How ``got`` covers the labeled tasks of ``reference``: counts of tasks missing, without
    ``data``, and without the newest annotation's id / updated_at / result / was_cancelled."""
    labeled = {tid: ref for tid, ref in reference.items() if ref["annotation"] is not None}
    missing = [tid for tid in labeled if tid not in got]
    no_data = sum(1 for tid in labeled if tid in got and not got[tid]["data"])
    wrong = {k: 0 for k in ANNOTATION_KEYS}
    for tid, ref in labeled.items():
        ann = (got.get(tid) or {}).get("annotation") or {}
        for k in ANNOTATION_KEYS:
            if k not in ann or ann[k] != ref["annotation"][k]:
                wrong[k] += 1
    complete = not missing and not no_data and not any(wrong.values())
    return {"labeled_tasks": len(labeled), "tasks_listed": len(got), "missing": len(missing),
            "without_data": no_data, "annotation_fields_missing_or_different": wrong,
            "complete": complete}


def timed(fn: Callable[[], list[dict]]) -> tuple[float, list[dict]]:
    t0 = time.monotonic()
    tasks = fn()
    return time.monotonic() - t0, tasks


def tasks_api(ls: LabelStudioClient, project: int, *, fields: str, page_size: int,
              query: dict | None = None) -> list[dict]:
    return list(ls.iter_tasks(project, fields=fields, page_size=page_size, query=query))


def export_api(ls: LabelStudioClient, project: int, *, export_type: str = "JSON",
               all_tasks: bool = True) -> list[dict]:
    """``GET /api/projects/<id>/export``: one answer with every task (``download_all_tasks``)."""
    params = {"exportType": export_type, "download_all_tasks": str(all_tasks).lower()}
    return ls.get(f"/api/projects/{project}/export", params=params) or []


def snapshot_export(ls: LabelStudioClient, project: int) -> list[dict]:
    """Create an export snapshot (``POST /api/projects/<id>/exports/``, run inside the request
    without Redis), then download it as JSON."""
    snap = ls.post(f"/api/projects/{project}/exports/", {
        "title": "bench", "task_filter_options": {"annotated": "only"},
        "serialization_options": {"drafts": {"only_id": True}, "predictions": {"only_id": True},
                                  "annotations__completed_by": {"only_id": True}}})
    sid = snap["id"]
    deadline = time.monotonic() + 600
    while snap.get("status") not in ("completed", "failed") and time.monotonic() < deadline:
        time.sleep(0.5)
        snap = ls.get(f"/api/projects/{project}/exports/{sid}")
    if snap.get("status") != "completed":
        raise RuntimeError(f"export snapshot {sid} ended {snap.get('status')!r}")
    tasks = ls.get(f"/api/projects/{project}/exports/{sid}/download", params={"exportType": "JSON"})
    ls.request("DELETE", f"/api/projects/{project}/exports/{sid}", expect=(200, 204, 404))
    return tasks or []


def touch_annotations(ls: LabelStudioClient, tasks: list[dict], count: int) -> list[int]:
    """Save ``count`` annotations again unchanged (a reviewer confirming); returns their task ids."""
    done = []
    for task in tasks:
        anns = task.get("annotations") or []
        if not anns:
            continue
        ls.patch(f"/api/annotations/{anns[0]['id']}", {"result": anns[0]["result"]})
        done.append(int(task["id"]))
        if len(done) >= count:
            break
    return done


def run(ls: LabelStudioClient, project: int, *, changed: int = 200) -> dict:
    """Every variant's seconds and completeness; see the module docstring."""
    results: list[dict] = []

    def record(name: str, request: str, seconds: float, tasks: list[dict], ref: dict, **extra):
        got = newest_annotations(tasks)
        results.append({"variant": name, "request": request, "seconds": round(seconds, 2),
                        **completeness(got, ref), **extra})
        print(f"{name:28s} {seconds:8.2f} s  {len(got):6d} tasks  complete={results[-1]['complete']}",
              flush=True)

    sec, tasks = timed(lambda: tasks_api(ls, project, fields="all", page_size=1000))
    reference = newest_annotations(tasks)
    record("tasks_all_page1000", "GET /api/tasks?project=P&fields=all&page_size=1000", sec, tasks, reference)
    for size in (100, 5000):
        sec, tasks = timed(lambda: tasks_api(ls, project, fields="all", page_size=size))
        record(f"tasks_all_page{size}", f"GET /api/tasks?project=P&fields=all&page_size={size}",
               sec, tasks, reference)
    sec, tasks = timed(lambda: tasks_api(ls, project, fields="task_only", page_size=1000))
    record("tasks_task_only_page1000", "GET /api/tasks?project=P&fields=task_only&page_size=1000",
           sec, tasks, reference, keys_of_a_task=sorted(tasks[0]) if tasks else [])
    sec, tasks = timed(lambda: export_api(ls, project))
    record("export_json", "GET /api/projects/P/export?exportType=JSON&download_all_tasks=true",
           sec, tasks, reference)
    sec, tasks = timed(lambda: export_api(ls, project, all_tasks=False))
    record("export_json_labeled", "GET /api/projects/P/export?exportType=JSON&download_all_tasks=false",
           sec, tasks, reference)
    sec, tasks = timed(lambda: export_api(ls, project, export_type="JSON_MIN"))
    record("export_json_min", "GET /api/projects/P/export?exportType=JSON_MIN&download_all_tasks=true",
           sec, tasks, reference)
    sec, tasks = timed(lambda: snapshot_export(ls, project))
    record("export_snapshot", "POST /api/projects/P/exports/ then GET .../exports/S/download?exportType=JSON",
           sec, tasks, reference)

    # only the tasks changed since a moment: save `changed` annotations again after it
    since = datetime.now(timezone.utc)
    time.sleep(1.0)
    sample = tasks_api(ls, project, fields="all", page_size=changed)[:changed]
    touched = set(touch_annotations(ls, sample, changed))
    sec, tasks = timed(lambda: tasks_api(ls, project, fields="all", page_size=1000,
                                         query=changed_since_query(since)))
    fresh = newest_annotations(tasks_api(ls, project, fields="all", page_size=1000))
    got = newest_annotations(tasks)
    listed = set(got)
    results.append({
        "variant": "tasks_all_changed_since", "seconds": round(sec, 2),
        "request": "GET /api/tasks?project=P&fields=all&page_size=1000&query={filters: "
                   "filter:tasks:updated_at greater T}",
        "annotations_saved_after_T": len(touched), "tasks_listed": len(listed),
        "saved_tasks_listed": len(touched & listed), "other_tasks_listed": len(listed - touched),
        "newest_annotation_matches": sum(got[t]["annotation"] == fresh[t]["annotation"]
                                         for t in touched & listed),
        "complete": "only for the changed tasks: a first job still needs a full listing"})
    print(f"{'tasks_all_changed_since':28s} {sec:8.2f} s  {len(listed):6d} tasks "
          f"({len(touched & listed)}/{len(touched)} saved ones)", flush=True)
    return {"project_tasks": len(reference), "variants": results}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--api-key", required=True)
    ap.add_argument("--project", type=int, required=True)
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    ap.add_argument("--note", default="", help="free text stored with the figures (the setup)")
    args = ap.parse_args(argv)
    ls = LabelStudioClient(args.url, args.api_key, timeout=900.0)
    figures = run(ls, args.project)
    figures.update(command=" ".join(["python", "scripts/bench_listing.py", *(argv or sys.argv[1:])]),
                   note=args.note, date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
