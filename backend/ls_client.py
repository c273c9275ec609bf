"""A small Label Studio API client: tasks, annotations, media, bulk predictions, model versions.

Authentication: a legacy token is sent as ``Authorization: Token <key>``. A personal access
token is a JWT refresh token: it is exchanged at ``POST /api/token/refresh`` for a short-lived
access token sent as ``Authorization: Bearer <access>``, renewed before it expires or on a 401.
"""
from __future__ import annotations

import base64
import json
import logging
import threading
import time
from typing import Iterator
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

log = logging.getLogger(__name__)


class LabelStudioError(RuntimeError):
    """Label Studio answered with an error, or not as expected."""


def is_jwt(key: str) -> bool:
    """True for a personal access token (a JWT: three base64url parts, a JSON header)."""
    parts = key.split(".")
    if len(parts) != 3:
        return False
    try:
        header = json.loads(_b64url(parts[0]))
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(header, dict) and "alg" in header


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (epoch seconds), or None."""
    try:
        payload = json.loads(_b64url(token.split(".")[1]))
        return float(payload["exp"])
    except (ValueError, KeyError, IndexError, TypeError, UnicodeDecodeError):
        return None


def _b64url(part: str) -> str:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode("utf-8")


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


class LabelStudioClient:
    """Talks to one Label Studio at ``url`` with ``api_key``."""

    def __init__(self, url: str, api_key: str, *, timeout: float = 60.0,
                 download_timeout: float = 15.0, max_image_bytes: int = 10 * 1024 * 1024,
                 pool_size: int = 16):
        if not url or not url.startswith(("http://", "https://")):
            raise ValueError(f"Label Studio URL must start with http:// or https://, got {url!r}")
        if not api_key:
            raise ValueError("a Label Studio API key is needed (LABEL_STUDIO_API_KEY)")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.download_timeout = download_timeout
        self.max_image_bytes = max_image_bytes
        self._key = api_key
        self._jwt = is_jwt(api_key)
        self._access: str | None = None
        self._access_exp = 0.0
        self._lock = threading.Lock()
        self.session = requests.Session()
        retry = Retry(total=3, connect=3, read=2, status=3, backoff_factor=0.2,
                      status_forcelist=(502, 503, 504),
                      allowed_methods=frozenset({"GET", "PATCH", "DELETE", "PUT", "HEAD"}),
                      raise_on_status=False)
        adapter = HTTPAdapter(max_retries=retry, pool_connections=pool_size, pool_maxsize=pool_size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    # -- auth ---------------------------------------------------------------------------------
    def auth_header(self, *, force_refresh: bool = False) -> dict:
        if not self._jwt:
            return {"Authorization": f"Token {self._key}"}
        with self._lock:
            if force_refresh or self._access is None or time.time() > self._access_exp - 30:
                self._refresh()
            return {"Authorization": f"Bearer {self._access}"}

    def _refresh(self) -> None:
        resp = self.session.post(f"{self.url}/api/token/refresh", json={"refresh": self._key},
                                 timeout=self.timeout)
        if resp.status_code != 200:
            raise LabelStudioError(f"exchanging the personal access token failed: "
                                   f"HTTP {resp.status_code} {resp.text[:200]}")
        access = resp.json().get("access")
        if not access:
            raise LabelStudioError("POST /api/token/refresh answered without an access token")
        self._access = access
        self._access_exp = jwt_expiry(access) or time.time() + 240

    def request(self, method: str, path: str, *, expect=(200,), **kwargs) -> requests.Response:
        """Call the API; retries once with a fresh access token on 401 (personal tokens)."""
        url = path if path.startswith("http") else f"{self.url}{path}"
        kwargs.setdefault("timeout", self.timeout)
        resp = self.session.request(method, url, headers=self.auth_header(), **kwargs)
        if resp.status_code == 401 and self._jwt:
            resp = self.session.request(method, url, headers=self.auth_header(force_refresh=True),
                                        **kwargs)
        if resp.status_code not in expect:
            raise LabelStudioError(f"{method} {path} -> HTTP {resp.status_code}: {resp.text[:300]}")
        return resp

    # -- reading ------------------------------------------------------------------------------
    def iter_tasks(self, project: int, *, page_size: int = 1000) -> Iterator[dict]:
        """Every task of ``project`` with annotations (``fields=all``), page by page.

        ``GET /api/tasks`` answers ``{"tasks": [...], "total": n, ...}`` (older versions: a list).
        """
        page, seen = 1, 0
        while True:
            resp = self.request("GET", "/api/tasks", expect=(200, 404),
                                params={"project": project, "fields": "all", "page": page,
                                        "page_size": page_size})
            if resp.status_code == 404:  # past the last page
                return
            body = resp.json()
            tasks = body.get("tasks", []) if isinstance(body, dict) else body
            total = body.get("total") if isinstance(body, dict) else None
            if not tasks:
                return
            yield from tasks
            seen += len(tasks)
            if (total is not None and seen >= total) or len(tasks) < page_size:
                return
            page += 1

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
