"""``python -m detection rank DIR --out scores.csv``: see ``detection.cli``."""
import sys

from .cli import main

sys.exit(main())
