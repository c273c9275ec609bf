"""Label Studio's own behaviour, measured by ``scripts/bench_scale.py``: the Data Manager order
by Prediction score (and how tasks without a prediction of the project's model_version sort in
it), and how long deleting predictions takes (a model version; the ``delete_tasks_predictions``
action on 1,000 and 5,000 tasks) with a reviewer saving meanwhile."""
from __future__ import annotations

import json
import time

from backend.ls_client import LabelStudioClient
from scripts.bench_measure import Probe, rounded, summarize

DM_ORDER = {"ordering": ["-tasks:predictions_score"]}  # the Data Manager's "Prediction score" sort


def dm_top(ls: LabelStudioClient, project: int, *, count: int, page: int = 1, fields: str = "all") -> list[dict]:
    """The ``page``-th ``count`` tasks of the Data Manager order by Prediction score, highest
    first (``page=1``: the first ``count``)."""
    return ls.get("/api/tasks", params={"project": project, "fields": fields, "page": page,
                                        "page_size": count, "query": json.dumps(DM_ORDER)})["tasks"]


def on_version(task: dict, version: str) -> bool:
    """True when ``task`` (listed with ``fields=all``) has a prediction of ``version``."""
    return any(p.get("model_version") == version for p in task.get("predictions") or [])


def sort_behaviour(ls, pid: int, version: str, result: list, *, k: int = 10) -> dict:
    """How tasks without a prediction of the project's model_version sort (descending and
    ascending by Prediction score): ``k`` tasks get a prediction of a new version, the project
    switches to it, and the Data Manager's first page is read. The project is switched back."""
    ids = [t["id"] for t in dm_top(ls, pid, count=200, fields="task_only")][-k:]
    probe = "bench-sort-probe"
    ls.import_predictions(pid, [{"task": tid, "score": 0.01 * (i + 1), "model_version": probe,
                                 "result": result} for i, tid in enumerate(ids)])
    ls.set_model_version(pid, probe)
    try:
        out = {}
        for name, order in (("descending", "-tasks:predictions_score"), ("ascending", "tasks:predictions_score")):
            page = ls.get("/api/tasks", params={"project": pid, "page_size": 50, "query": json.dumps(
                {"ordering": [order]})})["tasks"]
            pos = [i for i, t in enumerate(page) if t["id"] in set(ids)]
            out[name] = {"positions_of_the_tasks_with_the_version": pos,
                         "first_page_scores": [t.get("predictions_score") for t in page[:k + 2]]}
    finally:
        ls.set_model_version(pid, version)
        ls.delete_model_version(pid, probe)
    return out


def deletion_behaviour(ls, pid: int, task_ids: list[int], result: list, *, reviewer: Probe) -> dict:
    """Seconds of ``DELETE /api/projects/<id>/model-versions/`` for a version on every task, and
    of the ``delete_tasks_predictions`` action for 1,000 and 5,000 tasks; the background
    reviewer's saves during each."""
    out = {}
    version = "bench-delete-probe"
    t0 = time.monotonic()
    ls.import_predictions(pid, [{"task": tid, "score": 0.5, "model_version": version, "result": result}
                                for tid in task_ids])
    t1 = time.monotonic()
    deleted = ls.delete_model_version(pid, version)
    t2 = time.monotonic()
    out["import_predictions"] = {"predictions": len(task_ids), "seconds": rounded(t1 - t0, 2)}
    out["delete_model_version"] = {"predictions": deleted, "seconds": rounded(t2 - t1, 2),
                                   "reviewer_saves": summarize(reviewer.samples, start=t1, end=t2)}
    for size in (1000, 5000):
        chosen = task_ids[:size]
        if len(chosen) < size:
            continue
        ls.import_predictions(pid, [{"task": tid, "score": 0.5, "model_version": version, "result": result}
                                    for tid in chosen])
        t1 = time.monotonic()
        ls.post("/api/dm/actions", {"selectedItems": {"all": False, "included": chosen}},
                params={"id": "delete_tasks_predictions", "project": pid})
        t2 = time.monotonic()
        out[f"delete_tasks_predictions_{size}"] = {
            "tasks": size, "seconds": rounded(t2 - t1, 2),
            "reviewer_saves": summarize(reviewer.samples, start=t1, end=t2)}
    return out
