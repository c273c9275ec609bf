"""Reading a project's tasks from Label Studio: page by page, from one export snapshot (the
training's complete listing), and only the tasks changed since a moment. A part of
:class:`backend.ls_client.LabelStudioClient` (this module's :class:`TaskListing` is one of its
bases: it sends with the client's ``request``, ``get`` and ``paginate``); also Label Studio's
timestamps (:func:`parse_time`) and the Data Manager query of changed tasks
(:func:`changed_since_query`).
"""
from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from typing import Any, Iterator

from .ls_errors import LabelStudioError

__all__ = ["DM_DATETIME", "TaskListing", "changed_since_query", "parse_time"]

#: the value format of the Data Manager's Datetime filters
DM_DATETIME = "%Y-%m-%dT%H:%M:%S.%fZ"


class TaskListing:
    """The task reads of :class:`backend.ls_client.LabelStudioClient`."""

    def iter_tasks(self, project: int, *, fields: str | None = "all", include: str | None = None,
                   query: dict | None = None, page_size: int = 1000) -> Iterator[dict]:
        """Tasks of ``project``, page by page: with annotations and predictions by default
        (``fields=all``); ``include`` names the only fields wanted (e.g. ``"id,data"``);
        ``query`` is a Data Manager query (e.g. an ordering)."""
        params: dict[str, Any] = {"project": int(project)}
        if fields:
            params["fields"] = fields
        if include:
            params["include"] = include
        if query:
            params["query"] = json.dumps(query)
        return self.paginate("/api/tasks", params=params, key="tasks", page_size=page_size)

    def list_tasks_for_training(self, project: int, *, timeout: float = 1800.0,
                                poll: float = 0.5) -> list[dict]:
        """Every task of ``project`` with ``id``, ``data`` and its annotations (``id``,
        ``updated_at``, ``result``, ``was_cancelled``...), the shape :meth:`iter_tasks` gives,
        from one export snapshot: the fastest complete listing measured on Label Studio 1.23.2
        (``benchmark/listing.json``: 10,000 tasks in about a third of the ``fields=all`` pages'
        time). The snapshot (``POST /api/projects/<id>/exports/``; built inside that request
        without Redis, polled until completed with it) is downloaded as JSON and deleted.

        Falls back to :meth:`iter_tasks` when Label Studio has no snapshot export or refuses it
        (403/404/405), when the snapshot fails, and when a task's data holds a cloud storage URI
        (``s3://...``: only the task API resolves those into URLs Label Studio serves).
        ``timeout`` bounds the snapshot's creation and download (not ``self.timeout``)."""
        pid = int(project)
        # without Redis the snapshot is built inside this request: minutes at 60,000 tasks
        resp = self.request("POST", f"/api/projects/{pid}/exports/", expect=(200, 201, 403, 404, 405),
                            json=_SNAPSHOT_OPTIONS, timeout=timeout)
        snap = self._json(resp) if resp.status_code in (200, 201) else None
        if not isinstance(snap, dict) or not isinstance(snap.get("id"), int):
            return list(self.iter_tasks(pid))
        sid = snap["id"]
        try:
            deadline = time.monotonic() + timeout
            while snap.get("status") not in ("completed", "failed"):
                if time.monotonic() > deadline:
                    raise LabelStudioError(f"the export snapshot {sid} of project {pid} was not "
                                           f"completed within {timeout:.0f} s")
                time.sleep(poll)
                snap = self.get(f"/api/projects/{pid}/exports/{sid}") or {}
            if snap["status"] != "completed":
                return list(self.iter_tasks(pid))
            tasks = self.get(f"/api/projects/{pid}/exports/{sid}/download",
                             params={"exportType": "JSON"}, timeout=timeout)
        finally:
            self.request("DELETE", f"/api/projects/{pid}/exports/{sid}", expect=(200, 204, 404))
        if not isinstance(tasks, list):
            raise LabelStudioError(f"the export snapshot {sid} of project {pid} is not a task list")
        if any(_has_storage_uri(t.get("data")) for t in tasks if isinstance(t, dict)):
            return list(self.iter_tasks(pid))
        return tasks

    def list_changed_tasks(self, project: int, *, since: datetime) -> list[dict]:
        """The tasks of ``project`` (shaped as :meth:`iter_tasks` gives them, with annotations)
        whose ``updated_at`` is after ``since``: Label Studio 1.23.2 moves a task's ``updated_at``
        when the task is created or changed and when one of its annotations is created, updated or
        deleted, not when predictions are imported or deleted (measured; benchmark/listing.json:
        the 200 changed tasks of 10,000 in 1.7 s against 26 s for the whole snapshot)."""
        return list(self.iter_tasks(project, query=changed_since_query(since)))

    def count_changed_tasks(self, project: int, *, since: datetime) -> int | None:
        """How many tasks :meth:`list_changed_tasks` would give (the Data Manager's ``total``)."""
        resp = self.request("GET", "/api/tasks", params={
            "project": int(project), "include": "id", "page": 1, "page_size": 1,
            "query": json.dumps(changed_since_query(since))})
        total = (self._json(resp) or {}).get("total")
        return total if isinstance(total, int) else None


#: an export snapshot of every task with every annotation (skipped and ground truth too) and
#: only the ids of drafts, predictions and annotators
_SNAPSHOT_OPTIONS = {
    "title": "ML backend training listing",
    "task_filter_options": {},
    "annotation_filter_options": {"usual": True, "ground_truth": True, "skipped": True},
    "serialization_options": {"drafts": {"only_id": True}, "predictions": {"only_id": True},
                              "annotations__completed_by": {"only_id": True}},
}
_STORAGE_URI = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def parse_time(value: Any) -> datetime | None:
    """A Label Studio timestamp (``2026-12-02T07:33:01.123456Z``) as an aware datetime, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        return None
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=timezone.utc)


def changed_since_query(since: datetime) -> dict:
    """A Data Manager query for the tasks whose ``updated_at`` is after ``since``."""
    value = since.astimezone(timezone.utc).strftime(DM_DATETIME)
    return {"filters": {"conjunction": "and", "items": [
        {"filter": "filter:tasks:updated_at", "operator": "greater", "type": "Datetime",
         "value": value}]}}


def _has_storage_uri(data: Any) -> bool:
    """True when a value of a task's ``data`` is a URI other than http(s) (``s3://``, ``gs://``)."""
    if not isinstance(data, dict):
        return False
    return any(isinstance(v, str) and _STORAGE_URI.match(v) and not v.lower().startswith(("http://", "https://"))
               for v in data.values())
