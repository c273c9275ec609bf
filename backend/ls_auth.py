"""Tokens and HTTP sessions for talking to Label Studio, apart from its API.

A Label Studio key is a legacy token or a personal access token, which is a JWT refresh token
(:func:`is_jwt`; the access tokens it is exchanged for expire at :func:`jwt_expiry`). The
session :func:`make_session` builds retries connection errors on every method, and 502/503/504
answers and read errors only on idempotent methods (:data:`IDEMPOTENT`: a POST a gateway may
have passed on is not sent twice, since a second import would duplicate tasks or predictions).
:func:`same_origin` tells whether a URL is on the Label Studio the key belongs to, so that the
key is never sent to another host.
"""
from __future__ import annotations

import base64
import json
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

__all__ = ["IDEMPOTENT", "is_jwt", "jwt_expiry", "make_session", "same_origin"]

#: methods that are retried after a read error or a 502/503/504 answer
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"})


# -- tokens ------------------------------------------------------------------------------------
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


# -- transport -----------------------------------------------------------------------------------
def make_session(*, retries: int = 3, read: int = 2, backoff: float = 0.2,
                 pool: int = 16) -> requests.Session:
    """A session that retries connection errors ``retries`` times on every method, and 502/503/504
    answers (``retries`` times) and read errors (``read`` times) on :data:`IDEMPOTENT` methods."""
    retry = Retry(total=retries, connect=retries, read=read, status=retries, backoff_factor=backoff,
                  status_forcelist=(502, 503, 504), allowed_methods=IDEMPOTENT,
                  raise_on_status=False)
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_connections=pool, pool_maxsize=pool)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


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
