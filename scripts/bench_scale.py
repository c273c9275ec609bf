"""A full-size project against a real Label Studio 1.23.2 and the backend under gunicorn.

    python scripts/bench_scale.py [--n 60000] [--db sqlite|postgres] [--dir DIR] [--out benchmark/scale.json]

Starts Label Studio (SQLite, or a private PostgreSQL cluster from Debian's ``postgresql``
package with ``--db postgres``) and the backend (reading Label Studio's local-files folder
directly), imports ``--n`` Fashion-MNIST images with 10% wrong labels through Local Files
storage, presses Start Training, and measures: import time; the training report's list /
download / fit / push seconds; Start Training to every task scored; a second training with the
image cache warm; a verdict batch of 200 corrections to the new top 1,000 of the Data Manager
order and to every task on the new version; a reviewer's save time with and without the
backend connected; reviewer saves during trainings, pushes and deletions and how many failed;
``/health`` latencies during training; the backend's peak RSS; and Label Studio's own
behaviour (how tasks without a prediction of the project's version sort, how long deleting a
model version and the ``delete_tasks_predictions`` action take). Writes ``--out`` with the
machine and prints a table. The figures are measurements, not assertions.

The background reviewer saves (every ~0.5 s during the trainings and deletions) go to a second,
small project in the same Label Studio database that has no ML backend: they meet the same
database locks without feeding verdicts into the measured project.
"""
from __future__ import annotations

import argparse
import functools
import json
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, NamedTuple

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests  # noqa: E402

from backend.ls_client import LabelStudioClient, LabelStudioError  # noqa: E402
from scripts import servers  # noqa: E402
from scripts.bench_measure import (Probe, ReviewerSaves, Sample,  # noqa: E402
                                   http_status, machine, peak_rss_bytes, reviewer_save, rounded,
                                   summarize)
from scripts.bench_ls_behaviour import (deletion_behaviour, dm_top, on_version,  # noqa: E402
                                        sort_behaviour)
from scripts.bench_stack import (TOKEN, Stack, http_500_answers, locked_errors,  # noqa: E402
                                 make_folder, read_truth, start_stack)

# -- Label Studio and backend calls --------------------------------------------------------------
#: this benchmark's own polling calls that Label Studio refused (e.g. HTTP 500 "database is
#: locked" on SQLite); they are retried and counted, not fatal
POLL_ERRORS: list[str] = []


def polled(call: Callable[[], object], *, attempts: int = 10, wait: float = 1.0):
    """``call()``, retried on a :class:`LabelStudioError` (recorded in :data:`POLL_ERRORS`)."""
    for attempt in range(attempts):
        try:
            return call()
        except LabelStudioError as exc:
            POLL_ERRORS.append(f"{time.strftime('%H:%M:%S')} {str(exc)[:120]}")
            if attempt == attempts - 1:
                raise
            time.sleep(wait)


def project_version(ls: LabelStudioClient, project: int) -> str:
    return polled(lambda: (ls.get(f"/api/projects/{project}") or {}).get("model_version") or "")


def project_version_counts(ls: LabelStudioClient, project: int) -> tuple[str, dict]:
    """The project's model_version and ``{version: prediction count}``."""
    return project_version(ls, project), polled(lambda: ls.model_versions(project))


def backend_status(backend_url: str, project: int) -> dict:
    return requests.get(f"{backend_url}/status", params={"project": project}, timeout=30).json()


def wait_training(backend_url: str, project: int, *, after: float, timeout: float) -> dict:
    """The backend's ``last_training`` once a training started after epoch ``after`` has finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = polled(lambda: backend_status(backend_url, project)).get("last_training") or {}
        if job.get("started", 0) >= after - 1 and job.get("finished"):
            if job.get("state") != "done":
                raise RuntimeError(f"the training ended {job.get('state')}: {job}")
            return job
        time.sleep(1)
    raise RuntimeError(f"no training finished within {timeout:.0f} s")


class Cleanup(NamedTuple):
    """What :func:`wait_cleanup` saw of the backend's pass removing older predictions."""

    t: float | None  # the monotonic time the pass was seen done; None when not waited for
    end: float  # the monotonic time the wait ended (``t``, or when it stopped waiting)
    report: dict | None  # the pass's report (None when not seen done)
    older_predictions_left: int  # older versions' predictions Label Studio still holds


def wait_cleanup(ls: LabelStudioClient, backend_url: str, project: int, *, version: str,
                 timeout: float, cleanup_wait: float | None) -> Cleanup:
    """Wait for the backend's pass removing older predictions after ``version`` (``last_cleanup``
    of that version, not stopped): up to ``cleanup_wait`` seconds, then the benchmark goes on
    beside it (``t`` None); with ``cleanup_wait`` None up to ``timeout``, and not done by then
    is an error."""
    limit = timeout if cleanup_wait is None else cleanup_wait
    deadline = time.monotonic() + limit
    done: dict | None = {}
    while time.monotonic() < deadline:
        done = polled(lambda: backend_status(backend_url, project)).get("last_cleanup") or {}
        if done.get("model_version") == version and not done.get("stopped"):
            break
        time.sleep(1)
    else:
        if cleanup_wait is None:
            raise RuntimeError(f"the older predictions were not removed within {limit:.0f} s")
        done = None
    counts = polled(lambda: ls.model_versions(project))
    end = time.monotonic()
    return Cleanup(t=end if done is not None else None, end=end, report=done,
                   older_predictions_left=sum(n or 0 for v, n in counts.items() if v != version))


def wait_all_on_version(ls: LabelStudioClient, project: int, *, total: int, not_version: str | None,
                        timeout: float, poll: float = 1.0) -> tuple[str, float]:
    """Wait until the project's model_version (other than ``not_version``) has ``total``
    predictions; returns it and the monotonic time it was seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        version, counts = project_version_counts(ls, project)
        if version and version != not_version and (counts.get(version) or 0) >= total:
            return version, time.monotonic()
        time.sleep(poll)
    raise RuntimeError(f"not every task was on a new model_version within {timeout:.0f} s")


def timed_saves(ls: LabelStudioClient, targets: list[tuple[int, list]]) -> list[Sample]:
    out = []
    for aid, result in targets:
        t0 = time.monotonic()
        status = reviewer_save(ls, aid, result)
        out.append(Sample(t0, time.monotonic() - t0, status))
    return out


# -- the run ------------------------------------------------------------------------------------
def save_targets(tasks: list[dict]) -> list[tuple[int, list]]:
    """(annotation id, result) of each task's first annotation: a save that changes nothing."""
    return [(t["annotations"][0]["id"], t["annotations"][0]["result"]) for t in tasks
            if t.get("annotations")]


def verdict_targets(top: list[dict], truth: dict[str, dict], spec, *, count: int) -> list[tuple[int, list]]:
    """``count`` reviews of the first tasks of ``top``: a wrong label corrected to the true one,
    a right one confirmed (saved unchanged)."""
    out = []
    for task in top[:count]:
        ann = task["annotations"][0]
        row = truth[task["data"]["path"]]
        if row["is_fault"] == "1" and row["true_label"] in spec.choices:
            result = spec.result(spec.choices.index(row["true_label"]))
        else:
            result = ann["result"]
        out.append((ann["id"], result))
    return out


def press_and_wait(ls, stack: Stack, pid: int, ml_id: int, *, total: int, previous: str | None,
                   timeout: float, cleanup_wait: float | None = None) -> dict:
    """Press Start Training; the training report and Start Training to every task scored; then
    the background removal of the older predictions, waited for up to ``cleanup_wait`` seconds
    (None: ``timeout``, and not done by then is an error)."""
    press_epoch, t0 = time.time(), time.monotonic()
    ls.post(f"/api/ml/{ml_id}/train", {})
    press_s = time.monotonic() - t0
    job = wait_training(stack.backend.url, pid, after=press_epoch, timeout=timeout)
    version, t_all = wait_all_on_version(ls, pid, total=total, not_version=previous, timeout=timeout)
    out = {"press_seconds": rounded(press_s), "start_to_all_scored_seconds": rounded(t_all - t0, 1),
           "job_seconds": job.get("duration"), "report": job.get("report"), "model_version": version,
           "window": (t0, t_all)}
    if previous is not None:  # the older version's predictions go in the background: until done
        clean = wait_cleanup(ls, stack.backend.url, pid, version=version, timeout=timeout,
                             cleanup_wait=cleanup_wait)
        out.update(start_to_older_predictions_removed_seconds=rounded(clean.t and clean.t - t0, 1),
                   cleanup=clean.report, older_predictions_left=clean.older_predictions_left,
                   window=(t0, clean.end))
        if clean.t is None:
            out["cleanup_still_running_after_seconds"] = rounded(clean.end - t0, 1)
    return out


def saves_disconnected(ls, pid: int, ml_id: int, sample: list[tuple[int, list]]) -> dict:
    """Disconnect the ML backend (and its project webhook) and time reviewer saves again."""
    ls.request("DELETE", f"/api/ml/{ml_id}", expect=(200, 204, 404))
    for hook in ls.get("/api/webhooks", params={"project": pid}) or []:
        ls.request("DELETE", f"/api/webhooks/{hook['id']}", expect=(200, 204, 404))
    return summarize(timed_saves(ls, sample))


def verdict_batch(ls, stack: Stack, pid: int, spec, truth, *, total: int, previous: str,
                  count: int = 200, top_n: int = 1000, page: int = 100, timeout: float = 1800,
                  cleanup_wait: float | None = None) -> dict:
    """``count`` reviews of the top of the Data Manager order, then: the new version's first
    ``page`` (what a reviewer sees: the project on a new version and the DM's first ``page`` rows
    all carrying it), its top ``top_n``, and every task on it.

    The top ``top_n`` is read as the Data Manager's page of rows ``top_n - page + 1 .. top_n``
    (before the first page: the first page is then known to be on the version too):
    Label Studio sorts a task without a prediction of the project's version after every task
    with one, in both directions (measured at the end of this run, ``sort_behaviour``), so when
    row ``top_n`` has a score of the new version, every row above it has one too. A read of all
    ``top_n`` rows takes Label Studio tens of seconds at 60,000 tasks while predictions are being
    pushed, which measured that read, not the sort; the whole top is still read once afterwards
    (``top_confirmed_with_fields_all``) and its time is reported."""
    top = polled(lambda: dm_top(ls, pid, count=top_n))
    targets = verdict_targets(top, truth, spec, count=count)
    saves = timed_saves(ls, targets)
    t_last = time.monotonic()
    deadline = t_last + timeout
    switched = first_page = visible = None
    stale_first_page: list[int] = []
    while time.monotonic() < deadline and visible is None:
        version = project_version(ls, pid)
        if version and version != previous:
            switched = switched or time.monotonic()
            # the Data Manager's own pages: its predictions_score is the mean score of the
            # project's model_version (None for a task without a prediction of it); the deepest
            # page first, since its rows all scored means every row above them is too
            deepest = polled(lambda: dm_top(ls, pid, count=page, page=top_n // page, fields="task_only"))
            if len(deepest) == page and all(t.get("predictions_score") is not None for t in deepest):
                visible = time.monotonic()
            first = polled(lambda: dm_top(ls, pid, count=page, fields="task_only"))
            stale_first_page.append(sum(t.get("predictions_score") is None for t in first))
            if all(t.get("predictions_score") is not None for t in first):
                first_page = first_page or visible or time.monotonic()
            if visible:
                break
        time.sleep(0.5)
    # checked again with every prediction listed
    t_read = time.monotonic()
    checked = polled(lambda: dm_top(ls, pid, count=top_n)) if visible else []
    top_read_s = time.monotonic() - t_read
    confirmed = bool(checked) and all(on_version(t, version) for t in checked)
    version, t_all = wait_all_on_version(ls, pid, total=total, not_version=previous, timeout=timeout)
    left_at_verdicts = polled(lambda: ls.model_versions(pid))
    clean = wait_cleanup(ls, stack.backend.url, pid, version=version, timeout=timeout,
                         cleanup_wait=cleanup_wait)
    return {"last_save_to_older_predictions_removed_seconds": rounded(clean.t and clean.t - t_last, 1),
            "predictions_by_version_when_all_on_new": left_at_verdicts,
            "cleanup": clean.report, "older_predictions_left": clean.older_predictions_left,
            "reviews": len(targets), "corrections": sum(1 for (aid, res), t in zip(targets, top)
                                                         if res != t["annotations"][0]["result"]),
            "saves": summarize(saves), "last_save_to_version_switch_seconds": rounded(switched and switched - t_last, 1),
            "last_save_to_first_page_visible_seconds": rounded(first_page and first_page - t_last, 1),
            "first_page_rows": page,
            "last_save_to_top_visible_seconds": rounded(visible and visible - t_last, 1),
            "stale_in_first_page_while_polling": stale_first_page,
            "top_confirmed_with_fields_all": confirmed,
            "top_read_with_fields_all_seconds": rounded(top_read_s, 1),
            "last_save_to_all_on_new_version_seconds": rounded(t_all - t_last, 1), "model_version": version,
            "window": (saves[0].t if saves else t_last, clean.end)}


class Project(NamedTuple):
    """The measured project, as :func:`prepare_project` leaves it."""
    ls: LabelStudioClient
    pid: int
    total: int
    side_pid: int  # the background reviewer's project (no ML backend)
    spec: object  # its LabelSpec
    truth: dict[str, dict]
    sample: list[tuple[int, list]]  # (annotation id, result) of 40 of its tasks
    ml_id: int


def prepare_project(stack: Stack, args, *, out: dict, echo: Callable[[str], None]) -> Project:
    """Import ``args.n`` images and the reviewer's side project, time saves without and with the
    backend connected (into ``out``), connect it."""
    from backend.labels import parse_label_config
    from scripts.import_folder import run_import
    from scripts.ls_project import connect_ml_backend

    folder = make_folder(stack.docroot / f"fashion-{args.n}", n=args.n, seed=args.seed)
    side = make_folder(stack.docroot / "reviewer-side", n=200, seed=args.seed + 1)
    ls = LabelStudioClient(stack.ls_server.url, TOKEN, timeout=1800.0)
    t0 = time.monotonic()
    summary = run_import(folder, url=ls.url, api_key=TOKEN, title=f"fashion {args.n}", storage="local",
                         document_root=stack.docroot, train=False, show_progress=False, ls=ls, echo=echo)
    out["import_seconds"] = rounded(time.monotonic() - t0, 1)
    pid = summary.project_id
    side_pid = run_import(side, url=ls.url, api_key=TOKEN, title="reviewer side project", storage="local",
                          document_root=stack.docroot, train=False, show_progress=False, ls=ls,
                          echo=lambda m: None).project_id
    spec = parse_label_config(ls.get(f"/api/projects/{pid}")["label_config"])
    sample = save_targets(ls.get("/api/tasks", params={"project": pid, "fields": "all", "page_size": 40})["tasks"])
    timed_saves(ls, sample[30:])  # warm-up, not counted
    out["save_without_backend"] = summarize(timed_saves(ls, sample[:30]))
    ml_id, warnings = connect_ml_backend(ls, pid, stack.backend.url)
    out["connect_warnings"] = warnings
    out["save_with_backend_idle"] = summarize(timed_saves(ls, sample[:30]))
    echo(f"imported {summary.found} tasks in {out['import_seconds']} s; saves without / with the backend: "
         f"p50 {out['save_without_backend']['p50_s']} / {out['save_with_backend_idle']['p50_s']} s")
    return Project(ls, pid, summary.found, side_pid, spec, read_truth(folder), sample, ml_id)


def run(args, *, echo: Callable[[str], None] = print, out: dict | None = None) -> dict:
    """The benchmark; ``out`` (filled as the phases end, so that a failure keeps what was
    measured) is returned."""
    base = (args.dir or Path(tempfile.mkdtemp(prefix="bench-scale-"))).resolve()
    out = {} if out is None else out
    out.update({"machine": machine(), "n": args.n, "db": args.db, "dir": str(base),
                "label_studio_settings": {} if args.stock_label_studio else {
                    **servers.LABEL_STUDIO_TUNING,
                    **(servers.LABEL_STUDIO_SQLITE_TUNING if args.db == "sqlite" else {})}})
    stack = start_stack(base, db=args.db, tuned=not args.stock_label_studio, echo=echo)
    probes: list[Probe] = []
    try:
        project = prepare_project(stack, args, out=out, echo=echo)
        ls, pid, total, spec, truth, sample, ml_id = (project.ls, project.pid, project.total, project.spec,
                                                      project.truth, project.sample, project.ml_id)
        side_targets = save_targets(list(ls.iter_tasks(project.side_pid)))
        reviewer = Probe(ReviewerSaves(ls.url, TOKEN, side_targets, seed=args.seed), interval=0.5,
                         name="reviewer")
        health = Probe(functools.partial(http_status, stack.backend.url + "/health"), interval=0.25,
                       name="health")
        probes = [reviewer, health]
        for p in probes:
            p.start()
        def record(name: str, phase: dict) -> dict:
            """The phase's figures with the reviewer's saves and /health during it, into ``out``."""
            start, end = phase.pop("window")
            listed = (phase.get("report") or {}).get("list_seconds")
            if listed is not None:  # the task listing: Label Studio reads the whole project
                phase["reviewer_saves_during_listing"] = summarize(reviewer.samples, start=start,
                                                                   end=start + listed)
            phase["reviewer_saves_meanwhile"] = summarize(reviewer.samples, start=start, end=end)
            phase["health_meanwhile"] = summarize(health.samples, start=start, end=end)
            out[name] = phase
            return phase
        first = record("first_training", press_and_wait(ls, stack, pid, ml_id, total=total, previous=None,
                                                         timeout=args.timeout, cleanup_wait=args.cleanup_wait))
        echo(f"first training: all {total} scored {first['start_to_all_scored_seconds']} s after Start Training")
        second = record("second_training", press_and_wait(ls, stack, pid, ml_id, total=total,
                                                           previous=first["model_version"], timeout=args.timeout,
                                                           cleanup_wait=args.cleanup_wait))
        echo(f"second training (cache warm): {second['start_to_all_scored_seconds']} s")
        verdicts = record("verdicts", verdict_batch(ls, stack, pid, spec, truth, total=total,
                                                    previous=second["model_version"], timeout=args.timeout,
                                                    cleanup_wait=args.cleanup_wait))
        echo(f"verdicts: top 1000 visible {verdicts['last_save_to_top_visible_seconds']} s after the "
             f"last save, all on the new version after {verdicts['last_save_to_all_on_new_version_seconds']} s")
        out["backend_peak_rss_bytes"] = peak_rss_bytes(stack.backend.process.pid)
        health.stop()
        stack.backend.stop()  # Label Studio's own behaviour, without the backend publishing
        stack.backend = None
        version = verdicts["model_version"]
        result = spec.result(0)
        try:  # Label Studio's own behaviour: a refusal is a figure too
            out["ls_sort_without_current_version"] = sort_behaviour(ls, pid, version, result)
            if not args.no_delete_probe:
                ids = [t["id"] for t in ls.iter_tasks(pid, fields="task_only")]
                out["ls_deletes"] = deletion_behaviour(ls, pid, ids, result, reviewer=reviewer)
        except LabelStudioError as exc:
            out["ls_probe_error"] = f"{time.strftime('%H:%M:%S')} {str(exc)[:300]}"
        out["reviewer_saves_total"] = summarize(reviewer.stop())
        out["save_without_backend_at_end"] = saves_disconnected(ls, pid, ml_id, sample[:30])
        out["label_studio_database_locked_errors"] = locked_errors(stack.ls_server.log)
        out["label_studio_http_500_answers"] = http_500_answers(stack.ls_server.log)
        out["bench_poll_errors"] = list(POLL_ERRORS)
    finally:
        for p in probes:
            p.stop()
        stack.stop()
        if not args.keep and args.dir is None:
            shutil.rmtree(base, ignore_errors=True)
    return out


def table(figures: dict) -> str:
    """The headline figures as a two-column text table."""
    def get(*path):
        x = figures
        for k in path:
            x = (x or {}).get(k) if isinstance(x, dict) else None
        return x

    rows = [("tasks", figures.get("n")), ("database", figures.get("db")),
            ("Label Studio settings", ", ".join(figures.get("label_studio_settings") or {}) or "as installed"),
            ("import (s)", figures.get("import_seconds"))]
    for name in ("first_training", "second_training"):
        rep = get(name, "report") or {}
        rows += [(f"{name}: list / download / fit / push (s)",
                  " / ".join(str(rep.get(k)) for k in ("list_seconds", "download_seconds", "fit_seconds",
                                                         "push_seconds"))),
                 (f"{name}: listing (tasks read)", f"{rep.get('listing')} ({rep.get('listed')})"),
                 (f"{name}: images by source", rep.get("images")),
                 (f"{name}: Start Training to all scored (s)", get(name, "start_to_all_scored_seconds")),
                 (f"{name}: /health p50 / p99 (s)", f"{get(name, 'health_meanwhile', 'p50_s')} / "
                                                  f"{get(name, 'health_meanwhile', 'p99_s')}"),
                 (f"{name}: reviewer saves / failed / max (s)",
                  f"{get(name, 'reviewer_saves_meanwhile', 'count')} / "
                  f"{get(name, 'reviewer_saves_meanwhile', 'failed')} / "
                  f"{get(name, 'reviewer_saves_meanwhile', 'max_s')}"),
                 (f"{name}: reviewer saves during listing, max (s)",
                  get(name, "reviewer_saves_during_listing", "max_s"))]
    rows += [("second_training: Start Training to older predictions removed (s)",
              get("second_training", "start_to_older_predictions_removed_seconds"))]
    rows += [("verdicts: 200 saves p50 / max (s)", f"{get('verdicts', 'saves', 'p50_s')} / "
                                                  f"{get('verdicts', 'saves', 'max_s')}"),
             ("verdicts: last save to first 100 rows visible (s)",
              get("verdicts", "last_save_to_first_page_visible_seconds")),
             ("verdicts: last save to top 1000 visible (s)", get("verdicts", "last_save_to_top_visible_seconds")),
             ("verdicts: last save to all on new version (s)",
              get("verdicts", "last_save_to_all_on_new_version_seconds")),
             ("verdicts: last save to older predictions removed (s)",
              get("verdicts", "last_save_to_older_predictions_removed_seconds")),
             ("verdicts: reviewer saves / failed", f"{get('verdicts', 'reviewer_saves_meanwhile', 'count')} / "
                                                  f"{get('verdicts', 'reviewer_saves_meanwhile', 'failed')}"),
             ("save without / with backend / without at end, p50 (s)",
              f"{get('save_without_backend', 'p50_s')} / {get('save_with_backend_idle', 'p50_s')} / "
              f"{get('save_without_backend_at_end', 'p50_s')}"),
             ("reviewer saves in all / failed / p99 (s)",
              f"{get('reviewer_saves_total', 'count')} / {get('reviewer_saves_total', 'failed')} / "
              f"{get('reviewer_saves_total', 'p99_s')}"),
             ("LS answers 'database is locked'", figures.get("label_studio_database_locked_errors")),
             ("backend peak RSS (MB)", round((figures.get("backend_peak_rss_bytes") or 0) / 2**20)),
             ("LS: DELETE model-versions (s, predictions)",
              f"{get('ls_deletes', 'delete_model_version', 'seconds')}, "
              f"{get('ls_deletes', 'delete_model_version', 'predictions')}")]
    for size in (1000, 5000):
        rows.append((f"LS: delete_tasks_predictions {size} tasks (s)",
                     get("ls_deletes", f"delete_tasks_predictions_{size}", "seconds")))
    rows += [(name, figures[key]) for name, key in (("LS probe refused", "ls_probe_error"),
                                                    ("run failed", "error")) if figures.get(key)]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60000, help="Fashion-MNIST images (default 60000, at most 60000)")
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--dir", type=Path, default=None, help="work folder (default: a temporary one, removed)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stock-label-studio", action="store_true",
                    help="start Label Studio without the settings of servers.LABEL_STUDIO_TUNING")
    ap.add_argument("--timeout", type=float, default=7200.0, help="seconds allowed per waiting step")
    ap.add_argument("--cleanup-wait", type=float, default=None,
                    help="seconds to wait for the background removal of older predictions before going "
                         "on beside it (default: until done, up to --timeout)")
    ap.add_argument("--no-delete-probe", action="store_true",
                    help="skip the probe of Label Studio's own deletes at the end (minutes at 60,000)")
    ap.add_argument("--out", type=Path, default=servers.REPO / "benchmark" / "scale.json")
    args = ap.parse_args(argv)
    if not 200 <= args.n <= 60000:
        ap.error("--n must be between 200 and 60000 (Fashion-MNIST's training set)")
    # SIGTERM unwinds like an error, so the servers and the PostgreSQL cluster are stopped
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    t0 = time.monotonic()
    figures: dict = {}
    failed = None
    try:
        run(args, out=figures)
    except (RuntimeError, LabelStudioError, ValueError) as exc:
        failed = f"bench_scale failed: {exc}"
        figures["error"] = failed  # what was measured before is kept
    except (KeyboardInterrupt, SystemExit) as exc:  # Ctrl-C, SIGTERM: the phases done are kept too
        code = exc.code if isinstance(exc, SystemExit) else 130
        failed = f"bench_scale was stopped (exit status {code}) before its last phase"
        figures["error"] = failed
    figures["command"] = "python scripts/bench_scale.py " + " ".join(argv if argv is not None else sys.argv[1:])
    figures["wall_seconds"] = round(time.monotonic() - t0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(table(figures))
    print(f"wrote {args.out} ({figures['wall_seconds']} s)")
    if failed:
        print(failed, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
