"""The one Label Studio REST client, for the backend and the scripts.

:class:`LabelStudioClient` holds an authenticated ``requests`` session with retries, sends
requests whose status must be one of the expected ones (:meth:`LabelStudioClient.request`),
reads paginated lists, and has the calls the backend and the scripts need (tasks, annotations,
media downloads, bulk predictions, model versions). Every failure of Label Studio (an error
status, no answer, an answer that is not JSON, a refused key) is a :class:`LabelStudioError`
whose message is one line meant for a person at a terminal or in a log. Bad arguments (a URL
that is not http(s), an empty key) are ``ValueError``.

Authentication: a legacy token is sent as ``Authorization: Token <key>``. A personal access
token is a JWT refresh token: it is exchanged at ``POST /api/token/refresh`` for a short-lived
access token sent as ``Authorization: Bearer <access>``, renewed shortly before it expires and
whenever Label Studio answers 401.

Tokens, the retrying session and the same-origin check for media are in :mod:`backend.ls_auth`;
the task listings (page by page, the export snapshot, the tasks changed since a moment) in
:mod:`backend.ls_tasks`.
"""
from __future__ import annotations

import threading
import time
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Collection, Iterator, NamedTuple, Sequence
from urllib.parse import urljoin, urlsplit

import requests

from .ls_auth import is_jwt, jwt_expiry, make_session, same_origin
from .ls_errors import LabelStudioError
from .ls_tasks import DM_DATETIME, TaskListing, changed_since_query, parse_time

__all__ = ["DM_DATETIME", "LabelStudioClient", "LabelStudioError", "TaskCount", "changed_since_query",
           "parse_time"]

SUCCESS = (200, 201, 204)


class TaskCount(NamedTuple):
    """A project's task count (None when not given) and Label Studio's clock when it was read
    (the ``Date`` of the answer, to the second; None when the answer has none)."""

    tasks: int | None
    server_time: datetime | None


#: the least time a bulk write (import or deletion of predictions) is given, in seconds
BULK_TIMEOUT = 600.0


class LabelStudioClient(TaskListing):
    """Talks to one Label Studio at ``url`` with ``api_key`` (legacy token or personal access
    token). ``timeout`` is for API calls; ``download_timeout`` and ``max_image_bytes`` limit
    media downloads."""

    def __init__(self, url: str, api_key: str, *, timeout: float = 60.0,
                 download_timeout: float = 15.0, max_image_bytes: int = 10 * 1024 * 1024,
                 pool_size: int = 16, session: requests.Session | None = None):
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"Label Studio URL must start with http:// or https://, got {url!r}")
        if not api_key:
            raise ValueError("a Label Studio API key is required (LABEL_STUDIO_API_KEY; "
                             "copy it from Account & Settings in Label Studio)")
        self.url = url.rstrip("/")
        self.timeout = timeout
        # bulk writes (predictions in, predictions out) take Label Studio minutes when it is busy:
        # measured at 60,000 tasks, 1,000 predictions took over 60 s to import under load
        self.bulk_timeout = max(timeout, BULK_TIMEOUT)
        self.download_timeout = download_timeout
        self.max_image_bytes = max_image_bytes
        self.session = session or make_session(pool=pool_size)
        self._key = api_key
        self._pat = is_jwt(api_key)
        self._access: str | None = None
        self._access_exp = 0.0
        self._lock = threading.Lock()

    # -- authentication -------------------------------------------------------------------------
    def auth_header(self, *, force_refresh: bool = False) -> dict[str, str]:
        """The ``Authorization`` header for API and media requests."""
        if not self._pat:
            return {"Authorization": f"Token {self._key}"}
        with self._lock:
            stale = time.time() > self._access_exp - 30
            if force_refresh or self._access is None or stale:
                resp = self._send("POST", "/api/token/refresh", json={"refresh": self._key},
                                  authenticate=False)
                self._access = self._access_token(resp)
                self._access_exp = jwt_expiry(self._access) or time.time() + 240
            return {"Authorization": f"Bearer {self._access}"}

    def _access_token(self, resp: requests.Response) -> str:
        if resp.status_code in (401, 403):
            raise LabelStudioError(
                f"Label Studio at {self.url} rejected the personal access token "
                f"(HTTP {resp.status_code}); create a new one under Account & Settings")
        access = self._json(resp).get("access") if resp.ok else None
        if not access:
            raise LabelStudioError(
                f"could not exchange the personal access token at {self.url}/api/token/refresh "
                f"(HTTP {resp.status_code})")
        return access

    # -- requests -------------------------------------------------------------------------------
    def request(self, method: str, path: str, *, expect: Collection[int] = SUCCESS,
                **kwargs: Any) -> requests.Response:
        """Send an authenticated request (``path`` relative to ``url``, or a full URL); raise
        :class:`LabelStudioError` unless the answer's status is in ``expect``. ``kwargs`` go to
        ``requests`` (``json=``, ``params=``, ``files=``...)."""
        resp = self._send(method, path, **kwargs)
        if resp.status_code in expect:
            return resp
        self._refused(resp, method, path)
        raise LabelStudioError(f"{method} {path} failed: HTTP {resp.status_code} {_short(resp.text)}")

    def _refused(self, resp: requests.Response, method: str, path: str) -> None:
        """Raise the one-line error for an answer that refuses the key (401, 403)."""
        if resp.status_code in (401, 403):
            raise LabelStudioError(
                f"Label Studio at {self.url} rejected the API key (HTTP {resp.status_code} on "
                f"{method} {path}); copy it from Account & Settings")

    def get(self, path: str, **kwargs: Any) -> Any:
        """The JSON answer of a GET (None for an empty answer)."""
        return self._json(self.request("GET", path, **kwargs))

    def post(self, path: str, payload: Any = None, **kwargs: Any) -> Any:
        return self._json(self.request("POST", path, json=payload, **kwargs))

    def patch(self, path: str, payload: Any, **kwargs: Any) -> Any:
        return self._json(self.request("PATCH", path, json=payload, **kwargs))

    def _send(self, method: str, path: str, *, authenticate: bool = True,
              **kwargs: Any) -> requests.Response:
        """One request whatever its status; with a personal access token a 401 is retried once
        with a freshly exchanged access token."""
        url = path if path.startswith(("http://", "https://")) else self.url + path
        kwargs.setdefault("timeout", self.timeout)
        resp = self._transport(method, path, url, self.auth_header() if authenticate else {}, kwargs)
        if resp.status_code == 401 and authenticate and self._pat:
            resp = self._transport(method, path, url, self.auth_header(force_refresh=True), kwargs)
        return resp

    def _transport(self, method: str, path: str, url: str, headers: dict,
                   kwargs: dict) -> requests.Response:
        try:
            return self.session.request(method, url, headers=headers, **kwargs)
        except requests.exceptions.ConnectionError as exc:
            raise LabelStudioError(
                f"cannot reach Label Studio at {self.url} ({_reason(exc)}); is it running?") from None
        except requests.exceptions.Timeout:
            raise LabelStudioError(f"Label Studio at {self.url} did not answer {method} {path} "
                                   f"within {kwargs['timeout']:.0f} s") from None
        except requests.RequestException as exc:
            raise LabelStudioError(f"{method} {url} failed: {_reason(exc)}") from None

    @staticmethod
    def _json(resp: requests.Response) -> Any:
        if resp.status_code == 204 or not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            raise LabelStudioError(
                f"{resp.request.method} {resp.url} answered HTTP {resp.status_code} with non-JSON "
                f"content ({_short(resp.text)}); is this the Label Studio URL?") from None

    def paginate(self, path: str, *, params: dict | None = None, key: str = "results",
                 page_size: int = 1000) -> Iterator[dict]:
        """Items of a paginated list (``?page=N&page_size=M``): the ``key`` list of a dict answer
        (``{"tasks": [...], "total": n}``, ``{"results": [...], "next": ...}``) or a plain list.
        Stops at a 404 (Label Studio's answer past the last page), an empty or short page, a
        plain list, ``next`` empty, or ``total`` items seen."""
        page, seen = 1, 0
        while True:
            query = dict(params or {}, page=page, page_size=page_size)
            resp = self.request("GET", path, expect=(200, 404), params=query)
            if resp.status_code == 404:
                return
            body = self._json(resp)
            items = body if isinstance(body, list) else ((body or {}).get(key) or [])
            if not items:
                return
            yield from items
            seen += len(items)
            if isinstance(body, list) or len(items) < page_size:
                return
            if "next" in body and not body["next"]:
                return
            if body.get("total") is not None and seen >= body["total"]:
                return
            page += 1

    # -- reading --------------------------------------------------------------------------------
    def check(self) -> dict:
        """The current user; a one-line :class:`LabelStudioError` unless ``url`` is a Label Studio
        that accepts the key."""
        resp = self._send("GET", "/api/current-user/whoami")
        self._refused(resp, "GET", "/api/current-user/whoami")
        body = self._json(resp) if resp.ok else None
        if not isinstance(body, dict) or "id" not in body:
            raise LabelStudioError(
                f"{self.url} does not look like Label Studio (GET /api/current-user/whoami gave "
                f"HTTP {resp.status_code})")
        return body

    def count_tasks(self, project: int) -> TaskCount:
        """The project's ``task_number`` and Label Studio's clock (the answer's ``Date``); a
        project Label Studio does not show is an error."""
        body, clock = self._read_project(project, missing_ok=False)
        count = (body or {}).get("task_number")
        return TaskCount(tasks=count if isinstance(count, int) else None, server_time=clock)

    def get_project(self, project_id: int) -> dict | None:
        """The project, or None when Label Studio has no such project (or hides it from this key)."""
        return self._read_project(project_id, missing_ok=True)[0]

    def _read_project(self, project: int, *, missing_ok: bool) -> tuple[Any, datetime | None]:
        """``GET /api/projects/<id>``: the JSON answer and Label Studio's clock when it answered
        (the ``Date`` header, to the second; None without one). With ``missing_ok`` a 403 or 404
        gives ``(None, clock)``; without, it raises like any other refused status."""
        resp = self.request("GET", f"/api/projects/{int(project)}",
                            expect=(200, 403, 404) if missing_ok else SUCCESS)
        body = None if resp.status_code in (403, 404) else self._json(resp)
        try:
            clock = parsedate_to_datetime(resp.headers.get("Date", ""))
        except (TypeError, ValueError):
            clock = None
        return body, clock if clock is not None and clock.tzinfo else None

    def get_task(self, task_id: int) -> dict | None:
        """The task, or None when it no longer exists."""
        resp = self.request("GET", f"/api/tasks/{int(task_id)}", expect=(200, 404))
        return None if resp.status_code == 404 else self._json(resp)

    def get_annotation(self, annotation_id: int) -> dict | None:
        """The annotation, or None when it no longer exists."""
        resp = self.request("GET", f"/api/annotations/{int(annotation_id)}", expect=(200, 404))
        return None if resp.status_code == 404 else self._json(resp)

    def download(self, url: str) -> bytes:
        """Bytes of a media file served by this Label Studio (relative ``/data/...`` URLs are
        joined to it). Other hosts are refused (no server-side request forgery), redirects are
        not followed, and size and time are limited. Raises ``ValueError`` or ``LabelStudioError``.
        """
        if not isinstance(url, str) or not url:
            raise ValueError("empty image URL")
        full = urljoin(self.url + "/", url) if url.startswith("/") and not url.startswith("//") else url
        if not same_origin(full, self.url):
            raise ValueError(f"refusing to fetch {url!r}: images are fetched only from {self.url}")
        if urlsplit(full).path.startswith("/api/"):  # the token would act on the API, not fetch media
            raise ValueError(f"refusing to fetch {url!r}: an API path is not an image")
        deadline = time.monotonic() + self.download_timeout
        try:
            resp = self.session.get(full, headers=self.auth_header(), stream=True,
                                    allow_redirects=False, timeout=self.download_timeout)
        except requests.RequestException as exc:
            raise LabelStudioError(f"downloading {url} failed: {_reason(exc)}") from exc
        with resp:
            if resp.status_code != 200:
                raise LabelStudioError(f"downloading {url}: HTTP {resp.status_code}")
            length = resp.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > self.max_image_bytes:
                raise ValueError(f"{url} is {length} bytes, over the {self.max_image_bytes} limit")
            chunks, size = [], 0
            for chunk in resp.iter_content(65536):
                size += len(chunk)
                if size > self.max_image_bytes:
                    raise ValueError(f"{url} is over the {self.max_image_bytes} byte limit")
                if time.monotonic() > deadline:
                    raise LabelStudioError(f"downloading {url} took over {self.download_timeout} s")
                chunks.append(chunk)
        return b"".join(chunks)

    # -- writing --------------------------------------------------------------------------------
    def import_predictions(self, project: int, predictions: list[dict], *, batch: int = 5000) -> int:
        """Bulk-create predictions in batches; raises when Label Studio created fewer than sent
        (it drops e.g. scores outside [0, 1] silently). Returns the number created."""
        created = 0
        for start in range(0, len(predictions), batch):
            chunk = predictions[start:start + batch]
            body = self.post(f"/api/projects/{int(project)}/import/predictions", chunk,
                             expect=(200, 201), timeout=self.bulk_timeout)
            got = body.get("created") if isinstance(body, dict) else None
            if got != len(chunk):
                raise LabelStudioError(f"import/predictions created {got} of {len(chunk)} predictions")
            created += got
        return created

    def set_model_version(self, project: int, version: str) -> None:
        self.request("PATCH", f"/api/projects/{int(project)}", json={"model_version": version})

    def model_versions(self, project: int) -> dict:
        """``{model_version: prediction count}`` of ``project``."""
        body = self.get(f"/api/projects/{int(project)}/model-versions/")
        return body if isinstance(body, dict) else {v: None for v in body or []}

    def delete_task_predictions(self, project: int, task_ids: Sequence[int]) -> int:
        """Delete every prediction (of any version) of the tasks ``task_ids`` with the Data
        Manager's "Delete predictions" action, in one bounded transaction; returns how many were
        deleted. No call for an empty list (the action's selection would then mean nothing)."""
        ids = [int(t) for t in task_ids]
        if not ids:
            return 0
        body = self.post("/api/dm/actions", {"selectedItems": {"all": False, "included": ids}},
                         params={"id": "delete_tasks_predictions", "project": int(project)},
                         timeout=self.bulk_timeout)
        return int((body or {}).get("processed_items", 0)) if isinstance(body, dict) else 0

    def delete_model_version(self, project: int, version: str) -> int:
        """Delete every prediction of ``version`` in one call; returns how many were deleted."""
        resp = self.request("DELETE", f"/api/projects/{int(project)}/model-versions/",
                            json={"model_version": version}, expect=(200, 204), timeout=self.bulk_timeout)
        try:
            return int((self._json(resp) or {}).get("deleted_predictions", 0))
        except (ValueError, AttributeError, LabelStudioError):
            return 0


def _short(text: str, limit: int = 300) -> str:
    return " ".join((text or "").split())[:limit]


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "Temporary failure",
                   "timed out", "No route to host", "Max retries exceeded"):
        if marker in text:
            return marker.lower() if marker != "Max retries exceeded" else "connection failed"
    return _short(text, 120)
