"""Fault injection with ground truth: label noise (symmetric, pair) and out-of-distribution items."""
from __future__ import annotations

import numpy as np

LABEL_NOISE_KINDS = ("symmetric", "pair", "partial-pair")


def inject_label_noise(labels: np.ndarray, *, rate: float, kind: str = "symmetric",
                       num_classes: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Flip the labels of ``rate`` of the items (chosen uniformly at random).

    kind "symmetric": a flipped label is any other class, uniformly; "pair": class c becomes
    (c + 1) mod K, the systematic confusion; "partial-pair": the same, but only ``rate`` of the
    items of the first half of the classes (a confusion that only some classes suffer).
    Returns ``(noisy_labels (N,), is_fault (N,) bool)``.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D integer array, got shape {labels.shape} dtype {labels.dtype}")
    if not 0 <= rate <= 1:
        raise ValueError(f"rate must lie in [0, 1], got {rate}")
    if kind not in LABEL_NOISE_KINDS:
        raise ValueError(f"unknown label noise kind {kind!r}; choose one of {', '.join(LABEL_NOISE_KINDS)}")
    k = int(num_classes if num_classes is not None else labels.max() + 1)
    if k < 2:
        raise ValueError("label noise needs at least 2 classes")
    rng = np.random.default_rng(seed)
    n = len(labels)
    is_fault = np.zeros(n, dtype=bool)
    eligible = np.flatnonzero(labels < (k + 1) // 2) if kind == "partial-pair" else np.arange(n)
    is_fault[rng.choice(eligible, size=int(round(rate * len(eligible))), replace=False)] = True
    noisy = labels.astype(np.int64).copy()
    if kind == "symmetric":
        noisy[is_fault] = (labels[is_fault] + rng.integers(1, k, is_fault.sum())) % k
    else:
        noisy[is_fault] = (labels[is_fault] + 1) % k
    return noisy, is_fault


def photo_crops(count: int, *, size: int, channels: int, seed: int = 0) -> np.ndarray:
    """``count`` random crops of scikit-learn's two bundled photographs, as model input
    ``(count, channels, size, size)`` float32 in [0, 1]: items that belong to no digit class."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    rng = np.random.default_rng(seed)
    out = np.empty((count, channels, size, size), dtype=np.float32)
    for i in range(count):
        photo = photos[rng.integers(len(photos))]
        side = int(rng.integers(size, min(photo.shape[:2]) // 2))
        top = int(rng.integers(0, photo.shape[0] - side))
        left = int(rng.integers(0, photo.shape[1] - side))
        img = Image.fromarray(photo[top:top + side, left:left + side]).resize((size, size), Image.BILINEAR)
        img = img.convert("L" if channels == 1 else "RGB")
        arr = np.asarray(img, dtype=np.float32) / 255.0
        out[i] = arr[None] if channels == 1 else arr.transpose(2, 0, 1)
    return out


def inject_ood(x: np.ndarray, *, rate: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Replace ``rate`` of the items of ``x`` (N, C, H, W) by photo crops, keeping their labels.

    Returns ``(x_noisy, is_fault (N,) bool)``; ``x`` itself is not modified.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 4 or x.shape[2] != x.shape[3]:
        raise ValueError(f"x must have shape (N, C, S, S), got {x.shape}")
    if not 0 <= rate <= 1:
        raise ValueError(f"rate must lie in [0, 1], got {rate}")
    rng = np.random.default_rng(seed)
    n = len(x)
    is_fault = np.zeros(n, dtype=bool)
    idx = rng.choice(n, size=int(round(rate * n)), replace=False)
    is_fault[idx] = True
    out = x.copy()
    out[idx] = photo_crops(len(idx), size=x.shape[2], channels=x.shape[1], seed=seed + 1)
    return out, is_fault
