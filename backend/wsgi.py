"""WSGI entry point for gunicorn:

    gunicorn --preload --bind :9090 --workers 1 --threads 8 --timeout 0 backend.wsgi:app

The app is built here (in the gunicorn master with --preload); worker threads start on the first
request inside the serving process (see backend.registry).
"""
from .app import create_app

app = create_app()
