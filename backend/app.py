"""The application factory: ``create_app(config)`` builds the Flask app of the Label Studio ML
backend (routes in ``backend.routes``, errors as JSON ``{"error": "..."}`` in ``backend.errors``).

Logging is configured by the process entry points (``python -m backend``, ``backend.wsgi`` for
gunicorn), not here: an app built inside another process (tests, benchmarks) leaves that
process's logging alone.
"""
from __future__ import annotations

from typing import Any, Mapping

from flask import Flask

from . import routes
from .config import Config
from .errors import register_error_handlers
from .registry import Projects


def create_app(config: Config | Mapping[str, Any] | None = None) -> Flask:
    """Build the app. ``config``: a ``Config``, a mapping of overrides on the environment's
    settings, or None for the environment's settings."""
    if not isinstance(config, Config):
        config = Config.from_env().with_overrides(config or {})
    app = Flask(__name__)
    app.config["SUSPICION"] = config
    app.config["MAX_CONTENT_LENGTH"] = config.max_request_bytes  # larger bodies: 413, never read
    Projects(config).init_app(app)
    app.register_blueprint(routes.bp)
    register_error_handlers(app)
    return app
