"""WSGI entry point for gunicorn:

    gunicorn --preload --bind :9090 --workers 1 --threads 8 --timeout 0 backend.wsgi:app

The app is built here (in the gunicorn master with --preload); worker threads start on the first
request inside the serving process (see backend.registry). The detection library (torch) is
imported here too, so that the first /setup does not pay for it: Label Studio gives /setup 3 s.
Logging (LOG_LEVEL) is configured here, the process entry point, not by the app factory.
"""
from .app import create_app
from .config import Config, configure_logging

config = Config.from_env()
configure_logging(config)
app = create_app(config)
app.extensions["suspicion"].ranker_cls  # noqa: B018 - import torch and the pipeline before serving
