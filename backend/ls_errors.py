"""The one error of talking to Label Studio (see :mod:`backend.ls_client`)."""
from __future__ import annotations

__all__ = ["LabelStudioError"]


class LabelStudioError(RuntimeError):
    """Label Studio answered with an error, did not answer, or answered not as expected.

    The message is one line, readable without a traceback."""
