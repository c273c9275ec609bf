"""Development server: ``python -m backend --host 0.0.0.0 --port 9090``.

Production: ``gunicorn --preload --bind :9090 --workers 1 --threads 8 --timeout 0 backend.wsgi:app``
(one worker process: project state and its worker threads live in that process).
"""
from __future__ import annotations

import argparse
import sys

from .app import create_app
from .config import Config, configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend",
                                     description="Label Studio ML backend ranking suspicious labels")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9090, help="port (default 9090)")
    parser.add_argument("--debug", action="store_true", help="Flask debug mode (no reloader)")
    args = parser.parse_args(argv)
    try:
        config = Config.from_env()
    except ValueError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(config)
    app = create_app(config)
    app.extensions["suspicion"].ranker_cls  # noqa: B018 - import torch now, not on the first /setup
    app.run(host=args.host, port=args.port, debug=args.debug, threaded=True, use_reloader=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
