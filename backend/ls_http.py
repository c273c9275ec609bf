"""The HTTP foundation shared by the backend's Label Studio client (:mod:`backend.ls_client`) and
the scripts' one (``scripts/ls_api.py``): the error type, a ``requests`` session with retries,
the two kinds of API keys, authenticated requests and paginated reads.

Authentication: a legacy token is sent as ``Authorization: Token <key>``. A personal access
token is a JWT refresh token: it is exchanged at ``POST /api/token/refresh`` for a short-lived
access token sent as ``Authorization: Bearer <access>``, renewed on a 401 and (unless a subclass
turns it off) shortly before it expires.

Subclasses choose the wording of their errors through a few hooks (:meth:`LabelStudioHTTP._check`,
:meth:`LabelStudioHTTP._access_token`, :meth:`LabelStudioHTTP._transport_error`,
:meth:`LabelStudioHTTP._decode`); the mechanics live here once.
"""
from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any, Iterable, Iterator

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry


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


def make_session(*, retries: int = 3, read: int = 0, backoff: float = 0.5, pool: int = 8,
                 methods: Iterable[str] | None = None) -> requests.Session:
    """A session that retries connection errors and 502/503/504 answers ``retries`` times
    (``read`` times after a read error) on ``methods`` (None: every method, also POST: Label
    Studio answers those codes only when the request never reached the application)."""
    retry = Retry(total=retries, connect=retries, read=read, status=retries, backoff_factor=backoff,
                  status_forcelist=(502, 503, 504),
                  allowed_methods=None if methods is None else frozenset(methods),
                  raise_on_status=False)
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_connections=pool, pool_maxsize=pool)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class LabelStudioHTTP:
    """Authenticated requests to one Label Studio at ``url`` with ``api_key``."""

    config_error: type[Exception] = ValueError  #: raised for a bad URL or a missing key
    missing_key = "a Label Studio API key is needed"
    renew_before_expiry = True  #: renew a Bearer token 30 s before it expires, not only on a 401

    def __init__(self, url: str, api_key: str, *, timeout: float, session: requests.Session):
        if not url or not url.startswith(("http://", "https://")):
            raise self.config_error(f"Label Studio URL must start with http:// or https://, got {url!r}")
        if not api_key:
            raise self.config_error(self.missing_key)
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = session
        self._key = api_key
        self._pat = is_jwt(api_key)
        self._access: str | None = None
        self._access_exp = 0.0
        self._lock = threading.Lock()

    # -- authentication -------------------------------------------------------------------
    def auth_header(self, *, force_refresh: bool = False) -> dict[str, str]:
        """The ``Authorization`` header for API and media requests."""
        if not self._pat:
            return {"Authorization": f"Token {self._key}"}
        with self._lock:
            stale = self.renew_before_expiry and time.time() > self._access_exp - 30
            if force_refresh or self._access is None or stale:
                resp = self._send("POST", "/api/token/refresh", json={"refresh": self._key},
                                  authenticate=False)
                self._access = self._access_token(resp)
                self._access_exp = jwt_expiry(self._access) or time.time() + 240
            return {"Authorization": f"Bearer {self._access}"}

    # -- requests -------------------------------------------------------------------------
    def _send(self, method: str, path: str, *, authenticate: bool = True,
              **kwargs: Any) -> requests.Response:
        """One request (``path`` relative to ``url``, or a full URL), whatever its status; with a
        personal access token a 401 is retried once with a freshly exchanged access token."""
        url = path if path.startswith(("http://", "https://")) else self.url + path
        kwargs.setdefault("timeout", self.timeout)
        resp = self._request(method, path, url, self.auth_header() if authenticate else {}, kwargs)
        if resp.status_code == 401 and authenticate and self._pat:
            resp = self._request(method, path, url, self.auth_header(force_refresh=True), kwargs)
        return resp

    def _request(self, method: str, path: str, url: str, headers: dict,
                 kwargs: dict) -> requests.Response:
        try:
            return self.session.request(method, url, headers=headers, **kwargs)
        except requests.RequestException as exc:
            self._transport_error(exc, method, path, url, kwargs["timeout"])
            raise

    def _call(self, method: str, path: str, ok: tuple[int, ...], **kwargs: Any) -> requests.Response:
        """An authenticated request whose status must be in ``ok`` (see :meth:`_check`)."""
        resp = self._send(method, path, **kwargs)
        self._check(resp, method, path, ok)
        return resp

    def paginate(self, path: str, *, params: dict | None = None, key: str = "results",
                 page_size: int = 1000) -> Iterator[dict]:
        """Items of a paginated list (``?page=N&page_size=M``): the ``key`` list of a dict answer
        (``{"tasks": [...], "total": n}``, ``{"results": [...], "next": ...}``) or a plain list.
        Stops at a 404 (Label Studio's answer past the last page), an empty or short page, a
        plain list, ``next`` empty, or ``total`` items seen."""
        page, seen = 1, 0
        while True:
            query = dict(params or {}, page=page, page_size=page_size)
            resp = self._call("GET", path, (200, 404), params=query)
            if resp.status_code == 404:
                return
            body = self._decode(resp)
            items = body if isinstance(body, list) else (body.get(key) or [])
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

    # -- hooks: how a subclass words its errors -------------------------------------------
    def _check(self, resp: requests.Response, method: str, path: str, ok: tuple[int, ...]) -> None:
        """Raise unless ``resp``'s status is in ``ok``."""
        if resp.status_code not in ok:
            raise LabelStudioError(f"{method} {path} -> HTTP {resp.status_code}: {resp.text[:300]}")

    def _access_token(self, resp: requests.Response) -> str:
        """The access token in the answer of ``POST /api/token/refresh``, or raise."""
        if resp.status_code != 200:
            raise LabelStudioError(f"exchanging the personal access token failed: "
                                   f"HTTP {resp.status_code} {resp.text[:200]}")
        access = resp.json().get("access")
        if not access:
            raise LabelStudioError("POST /api/token/refresh answered without an access token")
        return access

    def _transport_error(self, exc: requests.RequestException, method: str, path: str, url: str,
                         timeout: float) -> None:
        """Called when a request got no answer; raise to replace ``exc``, return to re-raise it."""

    def _decode(self, resp: requests.Response) -> Any:
        """The JSON body of ``resp``."""
        return resp.json()
