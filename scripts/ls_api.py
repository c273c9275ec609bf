"""A small Label Studio REST client for the command-line scripts (import, demo, benchmark).

Only what the scripts need: an authenticated ``requests`` session with retries, one-line errors
(:class:`LabelStudioError`) instead of tracebacks, and paginated reads. Both kinds of Label Studio
API keys work: a legacy token (sent as ``Token <key>``) and a personal access token, which is a JWT
refresh token exchanged at ``POST /api/token/refresh`` for a short-lived ``Bearer`` access token
(exchanged again when Label Studio answers 401).
"""
from __future__ import annotations

import json
import threading
from typing import Any, Iterator

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

DEFAULT_TIMEOUT = 120.0


class LabelStudioError(ValueError):
    """A Label Studio call failed; the message is one line meant for the user."""


def is_personal_access_token(key: str) -> bool:
    """True when ``key`` looks like a JWT (a personal access token), False for a legacy token."""
    parts = key.split(".")
    return len(parts) == 3 and key.startswith("eyJ") and all(parts)


def make_session(*, retries: int = 3, backoff: float = 0.5, pool: int = 8) -> requests.Session:
    """A session that retries connection errors and 502/503/504 answers (also on POST: Label
    Studio answers those only when the request never reached the application)."""
    retry = Retry(total=retries, connect=retries, read=0, status=retries, backoff_factor=backoff,
                  status_forcelist=(502, 503, 504), allowed_methods=None,
                  raise_on_status=False)
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_connections=pool, pool_maxsize=pool)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class LabelStudio:
    """Authenticated access to one Label Studio server.

    Parameters
    ----------
    url : base URL, e.g. ``http://localhost:8080``
    api_key : legacy token or personal access token (JWT refresh token)
    """

    def __init__(self, url: str, api_key: str, *, timeout: float = DEFAULT_TIMEOUT,
                 session: requests.Session | None = None):
        if not url or not url.startswith(("http://", "https://")):
            raise LabelStudioError(f"Label Studio URL must start with http:// or https://, got {url!r}")
        if not api_key:
            raise LabelStudioError("an API key is required (Label Studio: Account & Settings)")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = session or make_session()
        self._api_key = api_key
        self._pat = is_personal_access_token(api_key)
        self._access: str | None = None
        self._lock = threading.Lock()

    # -- authentication -------------------------------------------------------------------
    def auth_header(self) -> dict[str, str]:
        """The ``Authorization`` header for API and media requests."""
        if not self._pat:
            return {"Authorization": f"Token {self._api_key}"}
        with self._lock:
            if self._access is None:
                self._access = self._refresh_access()
            return {"Authorization": f"Bearer {self._access}"}

    def _refresh_access(self) -> str:
        resp = self._send("POST", "/api/token/refresh", json={"refresh": self._api_key},
                          headers={}, retry_auth=False)
        if resp.status_code in (401, 403):
            raise LabelStudioError(
                f"Label Studio at {self.url} rejected the personal access token "
                f"(HTTP {resp.status_code}); create a new one under Account & Settings")
        access = _json(resp).get("access") if resp.ok else None
        if not access:
            raise LabelStudioError(
                f"could not exchange the personal access token at {self.url}/api/token/refresh "
                f"(HTTP {resp.status_code})")
        return access

    # -- requests -------------------------------------------------------------------------
    def request(self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201, 204),
                **kwargs: Any) -> requests.Response:
        """Send an authenticated request; raise :class:`LabelStudioError` unless the status is in ``ok``."""
        resp = self._send(method, path, headers=None, retry_auth=True, **kwargs)
        if resp.status_code in (401, 403) and resp.status_code not in ok:
            raise LabelStudioError(
                f"Label Studio at {self.url} rejected the API key (HTTP {resp.status_code} on "
                f"{method} {path}); copy it from Account & Settings")
        if resp.status_code not in ok:
            raise LabelStudioError(
                f"{method} {path} failed: HTTP {resp.status_code} {_short(resp.text)}")
        return resp

    def get(self, path: str, **kwargs: Any) -> Any:
        return _json(self.request("GET", path, **kwargs))

    def post(self, path: str, payload: Any = None, **kwargs: Any) -> Any:
        return _json(self.request("POST", path, json=payload, **kwargs))

    def patch(self, path: str, payload: Any, **kwargs: Any) -> Any:
        return _json(self.request("PATCH", path, json=payload, **kwargs))

    def _send(self, method: str, path: str, *, headers: dict | None, retry_auth: bool,
              **kwargs: Any) -> requests.Response:
        url = path if path.startswith(("http://", "https://")) else self.url + path
        kwargs.setdefault("timeout", self.timeout)
        for attempt in (0, 1):
            hdrs = dict(self.auth_header() if headers is None else headers)
            try:
                resp = self.session.request(method, url, headers=hdrs, **kwargs)
            except requests.exceptions.ConnectionError as exc:
                raise LabelStudioError(
                    f"cannot reach Label Studio at {self.url} ({_reason(exc)}); is it running?") from None
            except requests.exceptions.Timeout:
                raise LabelStudioError(
                    f"Label Studio at {self.url} did not answer {method} {path} within "
                    f"{kwargs['timeout']:.0f} s") from None
            except requests.exceptions.RequestException as exc:
                raise LabelStudioError(f"{method} {url} failed: {_reason(exc)}") from None
            if resp.status_code == 401 and retry_auth and self._pat and attempt == 0:
                with self._lock:
                    self._access = None  # expired access token: exchange the refresh token again
                continue
            return resp
        return resp

    # -- reads ----------------------------------------------------------------------------
    def check(self) -> dict:
        """Fail with a one-line error unless ``url`` is a Label Studio that accepts the key.

        Returns the current user.
        """
        try:
            resp = self._send("GET", "/api/current-user/whoami", headers=None, retry_auth=True)
        except LabelStudioError:
            raise
        if resp.status_code in (401, 403):
            raise LabelStudioError(
                f"Label Studio at {self.url} rejected the API key (HTTP {resp.status_code}); "
                "copy it from Account & Settings")
        body = _json(resp) if resp.ok else None
        if not isinstance(body, dict) or "id" not in body:
            raise LabelStudioError(
                f"{self.url} does not look like Label Studio (GET /api/current-user/whoami gave "
                f"HTTP {resp.status_code})")
        return body

    def paginate(self, path: str, *, params: dict | None = None, key: str = "results",
                 page_size: int = 1000) -> Iterator[dict]:
        """Yield items of a paginated list (``?page=N&page_size=M``); stops at the last page."""
        page = 1
        while True:
            query = dict(params or {}, page=page, page_size=page_size)
            resp = self.request("GET", path, params=query, ok=(200, 404))
            if resp.status_code == 404:  # Label Studio answers 404 for a page past the end
                return
            body = _json(resp)
            items = body if isinstance(body, list) else (body.get(key) or [])
            yield from items
            if isinstance(body, list) or len(items) < page_size:
                return
            if isinstance(body, dict) and "next" in body and not body["next"]:
                return
            page += 1

    def tasks(self, project: int, *, fields: str | None = None, include: str | None = None,
              query: dict | None = None, page_size: int = 1000) -> Iterator[dict]:
        """Tasks of a project, paginated; ``query`` is the Data Manager query (e.g. ordering)."""
        params: dict[str, Any] = {"project": project}
        if fields:
            params["fields"] = fields
        if include:
            params["include"] = include
        if query:
            params["query"] = json.dumps(query)
        return self.paginate("/api/tasks", params=params, key="tasks", page_size=page_size)


def _json(resp: requests.Response) -> Any:
    if resp.status_code == 204 or not resp.content:
        return None
    try:
        return resp.json()
    except ValueError:
        raise LabelStudioError(
            f"{resp.request.method} {resp.url} answered HTTP {resp.status_code} with non-JSON "
            f"content ({_short(resp.text)}); is this the Label Studio URL?") from None


def _short(text: str, limit: int = 300) -> str:
    return " ".join((text or "").split())[:limit]


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "Temporary failure",
                   "timed out", "No route to host", "Max retries exceeded"):
        if marker in text:
            return marker.lower() if marker != "Max retries exceeded" else "connection failed"
    return _short(text, 120)
