"""A small Label Studio REST client for the command-line scripts (import, demo, benchmark).

Only what the scripts need: an authenticated ``requests`` session with retries, one-line errors
(:class:`LabelStudioError`) instead of tracebacks, and paginated reads. Both kinds of Label Studio
API keys work: a legacy token (sent as ``Token <key>``) and a personal access token, which is a JWT
refresh token exchanged at ``POST /api/token/refresh`` for a short-lived ``Bearer`` access token
(exchanged again when Label Studio answers 401).

The mechanics (session, token kinds and exchange, the 401 retry, pagination) are the backend's
:mod:`backend.ls_http`; this module words the errors for people at a terminal.
"""
from __future__ import annotations

import json
from typing import Any, Iterator

import requests

from backend import ls_http
from backend.ls_http import is_jwt as is_personal_access_token
from backend.ls_http import make_session

__all__ = ["DEFAULT_TIMEOUT", "LabelStudio", "LabelStudioError", "is_personal_access_token",
           "make_session"]

DEFAULT_TIMEOUT = 120.0


class LabelStudioError(ls_http.LabelStudioError, ValueError):
    """A Label Studio call failed; the message is one line meant for the user.

    Also a ``ValueError``, which the scripts catch to print one line."""


class LabelStudio(ls_http.LabelStudioHTTP):
    """Authenticated access to one Label Studio server.

    Parameters
    ----------
    url : base URL, e.g. ``http://localhost:8080``
    api_key : legacy token or personal access token (JWT refresh token)
    """

    config_error = LabelStudioError
    missing_key = "an API key is required (Label Studio: Account & Settings)"
    renew_before_expiry = False  # the access token is exchanged again only after a 401

    def __init__(self, url: str, api_key: str, *, timeout: float = DEFAULT_TIMEOUT,
                 session: requests.Session | None = None):
        super().__init__(url, api_key, timeout=timeout, session=session or make_session())

    # -- requests -------------------------------------------------------------------------
    def request(self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201, 204),
                **kwargs: Any) -> requests.Response:
        """Send an authenticated request; raise :class:`LabelStudioError` unless the status is in ``ok``."""
        return self._call(method, path, ok, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return _json(self.request("GET", path, **kwargs))

    def post(self, path: str, payload: Any = None, **kwargs: Any) -> Any:
        return _json(self.request("POST", path, json=payload, **kwargs))

    def patch(self, path: str, payload: Any, **kwargs: Any) -> Any:
        return _json(self.request("PATCH", path, json=payload, **kwargs))

    # -- how errors read ------------------------------------------------------------------
    def _check(self, resp: requests.Response, method: str, path: str, ok: tuple[int, ...]) -> None:
        if resp.status_code in (401, 403) and resp.status_code not in ok:
            raise LabelStudioError(
                f"Label Studio at {self.url} rejected the API key (HTTP {resp.status_code} on "
                f"{method} {path}); copy it from Account & Settings")
        if resp.status_code not in ok:
            raise LabelStudioError(
                f"{method} {path} failed: HTTP {resp.status_code} {_short(resp.text)}")

    def _access_token(self, resp: requests.Response) -> str:
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

    def _transport_error(self, exc: requests.RequestException, method: str, path: str, url: str,
                         timeout: float) -> None:
        if isinstance(exc, requests.exceptions.ConnectionError):
            raise LabelStudioError(
                f"cannot reach Label Studio at {self.url} ({_reason(exc)}); is it running?") from None
        if isinstance(exc, requests.exceptions.Timeout):
            raise LabelStudioError(
                f"Label Studio at {self.url} did not answer {method} {path} within "
                f"{timeout:.0f} s") from None
        raise LabelStudioError(f"{method} {url} failed: {_reason(exc)}") from None

    def _decode(self, resp: requests.Response) -> Any:
        return _json(resp)

    # -- reads ----------------------------------------------------------------------------
    def check(self) -> dict:
        """Fail with a one-line error unless ``url`` is a Label Studio that accepts the key.

        Returns the current user.
        """
        resp = self._send("GET", "/api/current-user/whoami")
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
