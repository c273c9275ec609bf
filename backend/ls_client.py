"""A small Label Studio API client: tasks, annotations, media, bulk predictions, model versions.

Authentication, retries, errors and pagination come from :mod:`backend.ls_http` (shared with the
scripts' client): a legacy token is sent as ``Authorization: Token <key>``; a personal access
token is a JWT refresh token exchanged at ``POST /api/token/refresh`` for a short-lived access
token sent as ``Authorization: Bearer <access>``, renewed before it expires or on a 401.
"""
from __future__ import annotations

import time
from typing import Iterator
from urllib.parse import urljoin, urlsplit

import requests

from .ls_http import LabelStudioError, LabelStudioHTTP, is_jwt, jwt_expiry, make_session

__all__ = ["LabelStudioClient", "LabelStudioError", "is_jwt", "jwt_expiry", "same_origin"]


def same_origin(url: str, base: str) -> bool:
    """True when ``url`` has the scheme, host and port of ``base``."""
    a, b = urlsplit(url), urlsplit(base)
    if a.scheme not in ("http", "https"):
        return False
    default = {"http": 80, "https": 443}
    try:
        port_a = a.port or default[a.scheme]
        port_b = b.port or default.get(b.scheme)
    except ValueError:
        return False
    return (a.scheme == b.scheme and (a.hostname or "").lower() == (b.hostname or "").lower()
            and port_a == port_b and not a.username and not a.password)


class LabelStudioClient(LabelStudioHTTP):
    """Talks to one Label Studio at ``url`` with ``api_key``."""

    missing_key = "a Label Studio API key is needed (LABEL_STUDIO_API_KEY)"

    def __init__(self, url: str, api_key: str, *, timeout: float = 60.0,
                 download_timeout: float = 15.0, max_image_bytes: int = 10 * 1024 * 1024,
                 pool_size: int = 16):
        session = make_session(retries=3, read=2, backoff=0.2, pool=pool_size,
                               methods=("GET", "PATCH", "DELETE", "PUT", "HEAD"))
        super().__init__(url, api_key, timeout=timeout, session=session)
        self.download_timeout = download_timeout
        self.max_image_bytes = max_image_bytes

    def request(self, method: str, path: str, *, expect=(200,), **kwargs) -> requests.Response:
        """Call the API; retries once with a fresh access token on 401 (personal tokens)."""
        return self._call(method, path, tuple(expect), **kwargs)

    # -- reading ------------------------------------------------------------------------------
    def iter_tasks(self, project: int, *, page_size: int = 1000) -> Iterator[dict]:
        """Every task of ``project`` with annotations (``fields=all``), page by page.

        ``GET /api/tasks`` answers ``{"tasks": [...], "total": n, ...}`` (older versions: a list).
        """
        yield from self.paginate("/api/tasks", params={"project": project, "fields": "all"},
                                 key="tasks", page_size=page_size)

    def get_task(self, task_id: int) -> dict:
        return self.request("GET", f"/api/tasks/{int(task_id)}").json()

    def get_annotation(self, annotation_id: int) -> dict | None:
        """The annotation, or None when it no longer exists."""
        resp = self.request("GET", f"/api/annotations/{int(annotation_id)}", expect=(200, 404))
        return None if resp.status_code == 404 else resp.json()

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
        deadline = time.monotonic() + self.download_timeout
        try:
            resp = self.session.get(full, headers=self.auth_header(), stream=True,
                                    allow_redirects=False, timeout=self.download_timeout)
        except requests.RequestException as exc:
            raise LabelStudioError(f"downloading {url} failed: {exc}") from exc
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

    # -- writing ------------------------------------------------------------------------------
    def import_predictions(self, project: int, predictions: list[dict], *, batch: int = 5000) -> int:
        """Bulk-create predictions in batches; raises when Label Studio created fewer than sent
        (it drops e.g. scores outside [0, 1] silently). Returns the number created."""
        created = 0
        for start in range(0, len(predictions), batch):
            chunk = predictions[start:start + batch]
            resp = self.request("POST", f"/api/projects/{int(project)}/import/predictions",
                                json=chunk, expect=(200, 201))
            got = resp.json().get("created") if isinstance(resp.json(), dict) else None
            if got != len(chunk):
                raise LabelStudioError(f"import/predictions created {got} of {len(chunk)} predictions")
            created += got
        return created

    def set_model_version(self, project: int, version: str) -> None:
        self.request("PATCH", f"/api/projects/{int(project)}", json={"model_version": version})

    def model_versions(self, project: int) -> dict:
        """``{model_version: prediction count}`` of ``project``."""
        body = self.request("GET", f"/api/projects/{int(project)}/model-versions/").json()
        return body if isinstance(body, dict) else {v: None for v in body}

    def delete_model_version(self, project: int, version: str) -> int:
        """Delete every prediction of ``version`` in one call; returns how many were deleted."""
        resp = self.request("DELETE", f"/api/projects/{int(project)}/model-versions/",
                            json={"model_version": version}, expect=(200, 204))
        try:
            return int(resp.json().get("deleted_predictions", 0))
        except (ValueError, AttributeError):
            return 0
