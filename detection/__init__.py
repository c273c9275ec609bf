"""Rank labeled images by how likely their label is wrong (DFauLo, TracIn, loss ranking).

Importing the package is cheap: torch, scikit-learn and torchvision are loaded only by the modules
that use them (``detection.pipeline`` and below), so the command line can check its arguments and
answer a bad one at once.
"""

METHODS = ("dfaulo", "tracin", "loss")
"""The ranking methods ``SuspicionRanker.fit`` accepts."""

DEVICES = ("auto", "cpu", "cuda")
"""Where training runs: "auto" (CUDA when torch sees a GPU, else the CPU), "cpu" or "cuda"."""
