"""Time the ways of listing a project's tasks with their annotations against a real Label Studio.

    python scripts/bench_listing.py --url URL --api-key KEY --project ID [--out benchmark/listing.json]

Each variant reads the whole project (or, for ``changed_since``, the tasks updated after a
moment) and is checked against what a training job needs: every labeled task with ``data`` and
its newest annotation (``id``, ``updated_at``, ``result``, ``was_cancelled``). The reference is
``GET /api/tasks?fields=all`` with pages of 1,000 (the listing the backend used until now).
With ``--stack N [--db postgres]`` it first starts Label Studio 1.23.2 as ``scripts/bench_scale.py``
does and imports N Fashion-MNIST images through local-files storage; ``--variants`` picks the
listings to time besides the reference (a whole set at 60,000 tasks takes an hour).
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


#: the variants besides the reference (``tasks_all_page1000``, always run first), by name:
#: (the request as reported, how to list)
VARIANTS: dict[str, tuple[str, Callable[[LabelStudioClient, int], list[dict]]]] = {
    "tasks_all_page100": ("GET /api/tasks?project=P&fields=all&page_size=100",
                          lambda ls, p: tasks_api(ls, p, fields="all", page_size=100)),
    "tasks_all_page5000": ("GET /api/tasks?project=P&fields=all&page_size=5000",
                           lambda ls, p: tasks_api(ls, p, fields="all", page_size=5000)),
    "tasks_task_only_page1000": ("GET /api/tasks?project=P&fields=task_only&page_size=1000",
                                 lambda ls, p: tasks_api(ls, p, fields="task_only", page_size=1000)),
    "export_json": ("GET /api/projects/P/export?exportType=JSON&download_all_tasks=true",
                    lambda ls, p: export_api(ls, p)),
    "export_json_labeled": ("GET /api/projects/P/export?exportType=JSON&download_all_tasks=false",
                            lambda ls, p: export_api(ls, p, all_tasks=False)),
    "export_json_min": ("GET /api/projects/P/export?exportType=JSON_MIN&download_all_tasks=true",
                        lambda ls, p: export_api(ls, p, export_type="JSON_MIN")),
    "export_snapshot": ("POST /api/projects/P/exports/ then GET .../exports/S/download?exportType=JSON",
                        snapshot_export),
}
CHANGED_SINCE = "tasks_all_changed_since"


def check_variants(names: Iterable[str]) -> list[str]:
    """``names`` as a list; ``ValueError`` naming the unknown ones and the choices."""
    names = list(names)
    unknown = sorted(set(names) - set(VARIANTS) - {CHANGED_SINCE})
    if unknown:
        raise ValueError(f"unknown listing variants {', '.join(unknown)}; choose from "
                         f"{', '.join([*VARIANTS, CHANGED_SINCE])}")
    return names


def run(ls: LabelStudioClient, project: int, *, changed: int = 200,
        variants: Iterable[str] = (*VARIANTS, CHANGED_SINCE)) -> dict:
    """The seconds and completeness of the reference listing and of each of ``variants`` (names
    of ``VARIANTS`` and ``CHANGED_SINCE``); see the module docstring."""
    variants = check_variants(variants)
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
    for name in variants:
        if name == CHANGED_SINCE:
            continue
        request, listing = VARIANTS[name]
        sec, tasks = timed(lambda: listing(ls, project))
        extra = {"keys_of_a_task": sorted(tasks[0]) if tasks else []} if "task_only" in name else {}
        record(name, request, sec, tasks, reference, **extra)
    if CHANGED_SINCE in variants:
        results.append(changed_since(ls, project, changed=changed))
    return {"project_tasks": len(reference), "variants": results}


def changed_since(ls: LabelStudioClient, project: int, *, changed: int) -> dict:
    """Only the tasks changed since a moment: ``changed`` annotations saved again after it."""
    since = datetime.now(timezone.utc)
    time.sleep(1.0)
    # one page of tasks to save again, and those tasks read back one by one afterwards: a whole
    # listing would cost minutes at 60,000 tasks
    sample = ls.get("/api/tasks", params={"project": project, "fields": "all", "page_size": changed})["tasks"]
    touched = set(touch_annotations(ls, sample, changed))
    sec, tasks = timed(lambda: tasks_api(ls, project, fields="all", page_size=1000,
                                         query=changed_since_query(since)))
    fresh = newest_annotations(t for t in (ls.get_task(tid) for tid in sorted(touched)) if t)
    got = newest_annotations(tasks)
    listed = set(got)
    figures = {
        "variant": CHANGED_SINCE, "seconds": round(sec, 2),
        "request": "GET /api/tasks?project=P&fields=all&page_size=1000&query={filters: "
                   "filter:tasks:updated_at greater T}",
        "annotations_saved_after_T": len(touched), "tasks_listed": len(listed),
        "saved_tasks_listed": len(touched & listed), "other_tasks_listed": len(listed - touched),
        "newest_annotation_matches": sum(got[t]["annotation"] == fresh[t]["annotation"]
                                         for t in touched & listed),
        "complete": "only for the changed tasks: a first job still needs a full listing"}
    print(f"{CHANGED_SINCE:28s} {sec:8.2f} s  {len(listed):6d} tasks "
          f"({len(touched & listed)}/{len(touched)} saved ones)", flush=True)
    return figures


def on_own_stack(n: int, *, db: str, base: Path | None, seed: int = 0) -> tuple[dict, Callable[[], None]]:
    """Start Label Studio (``db``) as ``bench_scale`` does, import ``n`` Fashion-MNIST images
    through local-files storage; returns ``{"url", "api_key", "project", "import_seconds"}`` and
    the function that stops it all."""
    import tempfile

    from scripts.bench_stack import TOKEN, make_folder, start_stack
    from scripts.import_folder import run_import

    base = (base or Path(tempfile.mkdtemp(prefix="bench-listing-"))).resolve()
    stack = start_stack(base, db=db)
    try:
        folder = make_folder(stack.docroot / f"fashion-{n}", n=n, seed=seed)
        t0 = time.monotonic()
        summary = run_import(folder, url=stack.ls_server.url, api_key=TOKEN, title=f"fashion {n}",
                             storage="local", document_root=stack.docroot, train=False, show_progress=False)
        seconds = round(time.monotonic() - t0, 1)
    except BaseException:
        stack.stop()
        raise
    return ({"url": stack.ls_server.url, "api_key": TOKEN, "project": summary.project_id,
             "import_seconds": seconds}, stack.stop)


def add_target_arguments(ap: argparse.ArgumentParser, *, project_help: str | None = None) -> None:
    """The Label Studio a benchmark talks to: ``--url --api-key --project``, or ``--stack N
    [--db] [--dir]`` (see :func:`open_target`)."""
    ap.add_argument("--url", help="a running Label Studio (or --stack N)")
    ap.add_argument("--api-key")
    ap.add_argument("--project", type=int, help=project_help)
    ap.add_argument("--stack", type=int, metavar="N", default=None,
                    help="instead: start Label Studio 1.23.2 and import N Fashion-MNIST images first")
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite", help="with --stack")
    ap.add_argument("--dir", type=Path, default=None, help="with --stack: its work folder")


def open_target(ap: argparse.ArgumentParser, args, *, smallest: int = 200) -> tuple[dict, Callable[[], None]]:
    """With ``--stack N``: start it (:func:`on_own_stack`) and set ``args.url``, ``api_key`` and
    ``project``; returns its setup figures and the function that stops it. Without: checks the
    three are given; returns ``({}, a no-op)``. Bad arguments end with ``ap.error``."""
    if args.stack is None:
        if not (args.url and args.api_key and args.project):
            ap.error("give --url, --api-key and --project, or --stack N")
        return {}, (lambda: None)
    if not smallest <= args.stack <= 60000:
        ap.error(f"--stack N must be between {smallest} and 60000 (Fashion-MNIST's training set)")
    setup, stop = on_own_stack(args.stack, db=args.db, base=args.dir)
    args.url, args.api_key, args.project = setup["url"], setup["api_key"], setup["project"]
    return setup, stop


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_target_arguments(ap)
    ap.add_argument("--variants", default=",".join([*VARIANTS, CHANGED_SINCE]),
                    help="comma-separated, besides the reference tasks_all_page1000 (default: all)")
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    ap.add_argument("--note", default="", help="free text stored with the figures (the setup)")
    args = ap.parse_args(argv)
    try:  # before a --stack spends minutes starting Label Studio
        variants = check_variants(v for v in args.variants.split(",") if v)
    except ValueError as exc:
        ap.error(str(exc))
    setup, stop = open_target(ap, args)
    try:
        ls = LabelStudioClient(args.url, args.api_key, timeout=1800.0)
        figures = run(ls, args.project, variants=variants)
    finally:
        stop()
    figures.update(command=" ".join(["python", "scripts/bench_listing.py", *(argv or sys.argv[1:])]),
                   note=args.note, date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    if setup:
        from scripts.bench_measure import machine
        figures.update(machine=machine(), db=args.db, import_seconds=setup["import_seconds"])
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
