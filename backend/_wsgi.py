"""Alias of backend.wsgi, the entry name label-studio-ml-backend examples use."""
from .wsgi import app  # noqa: F401
