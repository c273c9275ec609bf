"""The backend's one error vocabulary: ``ApiError`` (a message and an HTTP status) and the JSON
error responses, ``{"error": "..."}``, for it, for werkzeug's HTTP errors and for crashes
(whose traceback goes to the log only)."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A request the backend refuses: ``message`` goes to the client with ``status``."""

    def __init__(self, message: str, status: int = 400, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message, self.status, self.headers = message, status, headers or {}


@contextmanager
def refused_as(status: int = 400) -> Iterator[None]:
    """Turn a ``ValueError`` raised inside the block into an ``ApiError`` with ``status`` (400,
    or 422 for a label config or task the backend cannot work with)."""
    try:
        yield
    except ValueError as exc:
        raise ApiError(str(exc), status) from None


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _crash)


def _api_error(exc: ApiError):
    return jsonify(error=exc.message), exc.status, exc.headers


def _http_error(exc: HTTPException):
    return jsonify(error=f"{exc.name}: {exc.description}"), exc.code


def _crash(exc: Exception):
    log.exception("unhandled error on %s %s", request.method, request.path)
    return jsonify(error=f"internal error ({type(exc).__name__}); see the backend log"), 500
