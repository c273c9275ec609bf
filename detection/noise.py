"""Fault injection with exact ground truth: wrong labels of several kinds and items that belong to
no class (out-of-distribution, from several origins), alone or mixed.

Every function returns which items it made faulty; nothing else changes. Label faults:

- "symmetric": a flipped label is any other class, uniformly;
- "pair": class c becomes (c + 1) mod K, the systematic confusion;
- "partial-pair": the same, but only ``rate`` of the items of the first half of the classes;
- "permutation": class c becomes pi(c) for a random permutation pi without fixed points;
- "classes": a confusion inside a subset of the classes (an item of the subset gets another class
  of the subset, uniformly); the other classes are untouched;
- "many-to-one": items of some source classes are all labeled as one target class.

Out-of-distribution origins ("ood" faults keep the label of the item they replace): "photo" (crops
of scikit-learn's two bundled photographs), "noise" (smooth random blobs), "pattern" (stripes,
checkerboards, rings), "other" (items of another data set, given by the caller).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np

LABEL_NOISE_KINDS = ("symmetric", "pair", "partial-pair", "permutation", "classes", "many-to-one")
OOD_ORIGINS = ("photo", "noise", "pattern", "other")
FAULT_KINDS = LABEL_NOISE_KINDS + ("ood",)


class LabelNoise(NamedTuple):
    labels: np.ndarray    # (N,) int64, the given (noisy) labels
    is_fault: np.ndarray  # (N,) bool, exactly the items whose label was changed


class OutOfDistribution(NamedTuple):
    x: np.ndarray         # (N, C, S, S) float32, the items with outliers in place
    is_fault: np.ndarray  # (N,) bool, exactly the items replaced


def _check_rate(rate: float) -> None:
    if not 0 <= rate <= 1:
        raise ValueError(f"rate must lie in [0, 1], got {rate}")


def _mask(among, n: int) -> np.ndarray:
    if among is None:
        return np.ones(n, dtype=bool)
    among = np.asarray(among, dtype=bool)
    if among.shape != (n,):
        raise ValueError(f"among must be a boolean mask of shape ({n},), got {among.shape}")
    return among


def _class_map(kind: str, k: int, rng: np.random.Generator, classes, target) -> tuple[np.ndarray, object]:
    """(source classes, mapping): mapping is an int array class -> new class, or None (random)."""
    if kind in ("symmetric",):
        return np.arange(k), None
    if kind == "pair":
        return np.arange(k), (np.arange(k) + 1) % k
    if kind == "partial-pair":
        return np.arange((k + 1) // 2), (np.arange(k) + 1) % k
    if kind == "permutation":
        perm = rng.permutation(k)
        while (perm == np.arange(k)).any():
            perm = rng.permutation(k)
        return np.arange(k), perm
    chosen = None if classes is None else np.unique(np.asarray(classes, dtype=np.int64))
    if chosen is not None and (chosen.min() < 0 or chosen.max() >= k):
        raise ValueError(f"classes must lie in 0..{k - 1}, got {chosen.tolist()}")
    if kind == "classes":
        chosen = chosen if chosen is not None else np.sort(rng.choice(k, size=min(k, 3), replace=False))
        if len(chosen) < 2:
            raise ValueError("a confusion inside classes needs at least 2 classes")
        return chosen, None
    # many-to-one
    if target is None:
        target = int(rng.choice(np.setdiff1d(np.arange(k), chosen if chosen is not None else [])))
    if not 0 <= target < k:
        raise ValueError(f"target must lie in 0..{k - 1}, got {target}")
    if chosen is None:
        chosen = np.sort(rng.choice(np.setdiff1d(np.arange(k), [target]), size=min(k - 1, 2), replace=False))
    if target in chosen:
        raise ValueError(f"the target class {target} cannot also be a source class")
    mapping = np.arange(k)
    mapping[chosen] = target
    return chosen, mapping


def inject_label_noise(labels: np.ndarray, *, rate: float, kind: str = "symmetric",
                       num_classes: int | None = None, seed: int = 0, among=None,
                       classes: Sequence[int] | None = None, target: int | None = None) -> LabelNoise:
    """Change the labels of ``rate`` of the items (chosen uniformly among the eligible ones).

    ``rate`` is a fraction of all items, except for "partial-pair" where it is a fraction of the
    items of the first half of the classes. Eligible items: those of ``among`` (a boolean mask;
    all by default) whose class the kind changes. ``classes`` (for "classes" and "many-to-one"
    the affected classes; drawn from ``seed`` when not given) and ``target`` (many-to-one's target
    class). At most half of the eligible items are changed: beyond that the wrong label would be
    their majority. Returns ``LabelNoise(labels (N,), is_fault (N,))``.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D integer array, got shape {labels.shape} dtype {labels.dtype}")
    _check_rate(rate)
    if kind not in LABEL_NOISE_KINDS:
        raise ValueError(f"unknown label noise kind {kind!r}; choose one of {', '.join(LABEL_NOISE_KINDS)}")
    k = int(num_classes if num_classes is not None else labels.max() + 1)
    if k < 2:
        raise ValueError("label noise needs at least 2 classes")
    rng = np.random.default_rng(seed)
    n = len(labels)
    sources, mapping = _class_map(kind, k, rng, classes, target)
    eligible = np.flatnonzero(_mask(among, n) & np.isin(labels, sources))
    count = int(round(rate * (len(eligible) if kind == "partial-pair" else n)))
    if count > len(eligible) // 2:
        raise ValueError(f"{kind} noise at rate {rate} would change {count} of the {len(eligible)} eligible "
                         "items; at most half can be changed (choose more classes or a lower rate)")
    is_fault = np.zeros(n, dtype=bool)
    is_fault[rng.choice(eligible, size=count, replace=False)] = True
    noisy = labels.astype(np.int64).copy()
    old = labels[is_fault].astype(np.int64)
    if mapping is not None:
        noisy[is_fault] = mapping[old]
    elif kind == "symmetric":
        noisy[is_fault] = (old + rng.integers(1, k, len(old))) % k
    else:  # "classes": another class of the subset
        pos = np.searchsorted(sources, old)
        noisy[is_fault] = sources[(pos + rng.integers(1, len(sources), len(old))) % len(sources)]
    return LabelNoise(noisy, is_fault)


def photo_crops(count: int, *, size: int, channels: int, seed: int = 0) -> np.ndarray:
    """``count`` random crops of scikit-learn's two bundled photographs, as model input
    ``(count, channels, size, size)`` float32 in [0, 1]."""
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


def noise_blobs(count: int, *, size: int, channels: int, seed: int = 0) -> np.ndarray:
    """Smooth random images: uniform noise on a coarse grid (2 to 8 cells a side) upsampled
    bilinearly, ``(count, channels, size, size)`` float32 in [0, 1]."""
    import torch
    from torch.nn import functional as F

    rng = np.random.default_rng(seed)
    out = np.empty((count, channels, size, size), dtype=np.float32)
    for i in range(count):
        cells = int(rng.integers(2, 9))
        coarse = torch.from_numpy(rng.random((1, channels, cells, cells), dtype=np.float32))
        out[i] = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=True)[0].numpy()
    return out


def patterns(count: int, *, size: int, channels: int, seed: int = 0) -> np.ndarray:
    """Regular textures: stripes at a random angle, checkerboards and rings of random period,
    ``(count, channels, size, size)`` float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    out = np.empty((count, channels, size, size), dtype=np.float32)
    for i in range(count):
        period = float(rng.uniform(3, size / 2))
        shape = int(rng.integers(3))
        if shape == 0:
            angle = rng.uniform(0, np.pi)
            img = np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period)
        elif shape == 1:
            img = np.sin(2 * np.pi * xx / period) * np.sin(2 * np.pi * yy / period)
        else:
            cy, cx = rng.uniform(0, size, 2)
            img = np.sin(2 * np.pi * np.hypot(yy - cy, xx - cx) / period)
        img = (img > 0).astype(np.float32) if rng.random() < 0.5 else (img + 1) / 2
        out[i] = img[None]
    return out


def outlier_images(count: int, *, origin: str, size: int, channels: int, seed: int = 0,
                   other: np.ndarray | None = None) -> np.ndarray:
    """``count`` images that belong to no class of the data set, ``(count, C, S, S)`` float32 in
    [0, 1]; origin "other" draws them (with replacement only when needed) from ``other``, items of
    another data set in the same model-input shape."""
    if origin not in OOD_ORIGINS:
        raise ValueError(f"unknown outlier origin {origin!r}; choose one of {', '.join(OOD_ORIGINS)}")
    if origin == "other":
        if other is None:
            raise ValueError('origin "other" needs the other data set\'s items (other=...)')
        other = np.asarray(other, dtype=np.float32)
        if other.shape[1:] != (channels, size, size):
            raise ValueError(f"other must have items of shape {(channels, size, size)}, got {other.shape[1:]}")
        rng = np.random.default_rng(seed)
        return other[rng.choice(len(other), size=count, replace=count > len(other))].copy()
    make = {"photo": photo_crops, "noise": noise_blobs, "pattern": patterns}[origin]
    return make(count, size=size, channels=channels, seed=seed)


def inject_ood(x: np.ndarray, *, rate: float, seed: int = 0, origin: str = "photo", among=None,
               other: np.ndarray | None = None) -> OutOfDistribution:
    """Replace ``rate`` of the items of ``x`` (N, C, S, S) (a fraction of all N, chosen among the
    items of the mask ``among``) by outliers of ``origin`` (see ``outlier_images``), keeping their
    labels. ``x`` itself is not modified. Returns ``OutOfDistribution(x (N, C, S, S), is_fault (N,))``."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 4 or x.shape[2] != x.shape[3]:
        raise ValueError(f"x must have shape (N, C, S, S), got {x.shape}")
    _check_rate(rate)
    rng = np.random.default_rng(seed)
    n = len(x)
    eligible = np.flatnonzero(_mask(among, n))
    count = int(round(rate * n))
    if count > len(eligible):
        raise ValueError(f"cannot replace {count} items: only {len(eligible)} are eligible")
    idx = rng.choice(eligible, size=count, replace=False)
    is_fault = np.zeros(n, dtype=bool)
    is_fault[idx] = True
    out = x.copy()
    out[idx] = outlier_images(count, origin=origin, size=x.shape[2], channels=x.shape[1], seed=seed + 1,
                              other=other)
    return OutOfDistribution(out, is_fault)


@dataclass(frozen=True)
class FaultPart:
    """One kind of fault planted in ``rate`` of all items: a label kind (``classes`` and
    ``target`` as in ``inject_label_noise``) or "ood" (``origin`` as in ``outlier_images``)."""

    kind: str
    rate: float
    classes: tuple[int, ...] | None = None
    target: int | None = None
    origin: str = "photo"

    def __post_init__(self):
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; choose one of {', '.join(FAULT_KINDS)}")
        _check_rate(self.rate)
        if self.kind == "ood" and self.origin not in OOD_ORIGINS:
            raise ValueError(f"unknown outlier origin {self.origin!r}; choose one of {', '.join(OOD_ORIGINS)}")


class PlantedFaults(NamedTuple):
    x: np.ndarray            # (N, C, S, S) float32, items after planting
    labels: np.ndarray       # (N,) int64, the given labels
    true_labels: np.ndarray  # (N,) int64, the right label, -1 for items that belong to no class
    is_fault: np.ndarray     # (N,) bool
    part: np.ndarray         # (N,) int64, index of the FaultPart that made the item faulty, -1 if clean


def plant_faults(x: np.ndarray, labels: np.ndarray, parts: Sequence[FaultPart], *, num_classes: int,
                 seed: int = 0, other: np.ndarray | None = None) -> PlantedFaults:
    """Plant each part's faults, in order, among the items still clean (disjoint ground truth).
    ``other``: another data set's items, for "ood" parts of origin "other"."""
    x = np.asarray(x, dtype=np.float32)
    labels = np.asarray(labels)
    if x.ndim != 4 or len(x) != len(labels):
        raise ValueError(f"x (N, C, S, S) and labels (N,) must match, got {x.shape} and {labels.shape}")
    if not parts:
        raise ValueError("no fault parts given")
    true = labels.astype(np.int64).copy()
    given = true.copy()
    part = np.full(len(x), -1, dtype=np.int64)
    for i, p in enumerate(parts):
        clean = part < 0
        s = seed + 7919 * i   # the first part uses the seed itself
        if p.kind == "ood":
            x, hit = inject_ood(x, rate=p.rate, seed=s, origin=p.origin, among=clean, other=other)
        else:
            given, hit = inject_label_noise(given, rate=p.rate, kind=p.kind, num_classes=num_classes, seed=s,
                                            among=clean, classes=p.classes, target=p.target)
        part[hit] = i
    is_ood_part = np.array([p.kind == "ood" for p in parts])
    true[(part >= 0) & is_ood_part[np.maximum(part, 0)]] = -1
    return PlantedFaults(x, given, true, part >= 0, part)
