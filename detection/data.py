"""Labeled image sets: image folders and in-memory arrays, as model input.

Model input is always ``float32`` of shape ``(N, C, H, W)`` with values in [0, 1]:
gray images become ``(1, 28, 28)``, color images ``(3, 32, 32)`` unless another size is asked for.
"""
from __future__ import annotations

import io
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
DEFAULT_SIZE = {1: 28, 3: 32}


@dataclass
class LabeledImages:
    """A labeled image set ready for a model.

    Attributes
    ----------
    x : float32 array (N, C, H, W), values in [0, 1]
    y : int64 array (N,), class indices into ``classes``
    classes : class names, index = class id
    paths : per item, its path relative to the folder root (posix), or ``str(index)`` for arrays
    skipped : paths of files that could not be read as images
    """

    x: np.ndarray
    y: np.ndarray
    classes: list[str]
    paths: list[str]
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.y)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def to_model_input(images: Sequence[Image.Image], *, channels: int | None = None,
                   size: int | None = None) -> np.ndarray:
    """Convert PIL images to a model input array ``(N, C, H, W)`` float32 in [0, 1].

    ``channels`` defaults to 1 when every image is gray (mode L, or RGB with equal bands is
    not inspected: only the mode counts), else 3. ``size`` defaults to 28 for gray, 32 for color.
    """
    if len(images) == 0:
        raise ValueError("no images to convert")
    if channels is None:
        channels = infer_channels(images)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    size = size or DEFAULT_SIZE[channels]
    out = np.empty((len(images), channels, size, size), dtype=np.float32)
    for i, img in enumerate(images):
        out[i] = _image_to_chw(img, channels=channels, size=size)
    return out


def infer_channels(images: Iterable[Image.Image]) -> int:
    """1 if every image is gray-scale (modes 1, L, LA, I, I;16, F), else 3."""
    gray_modes = {"1", "L", "LA", "I", "I;16", "F"}
    return 1 if all(img.mode in gray_modes for img in images) else 3


def decode_image(data: bytes, *, channels: int, size: int) -> np.ndarray:
    """Decode encoded image bytes into a ``(C, size, size)`` float32 array in [0, 1].

    Raises ``ValueError`` when the bytes are not a readable image.
    """
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return _image_to_chw(img, channels=channels, size=size)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"not a readable image: {exc}") from exc


def _image_to_chw(img: Image.Image, *, channels: int, size: int) -> np.ndarray:
    img = img.convert("L" if channels == 1 else "RGB")
    if img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)


def find_class_root(root: str | os.PathLike) -> Path:
    """The folder whose sub-folders are the classes: ``root/train`` when it exists, else ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder")
    train = root / "train"
    return train if train.is_dir() else root


def class_folders(base: Path) -> list[str]:
    """Sorted names of the class sub-folders of ``base`` (hidden ones left out); at least two,
    else ``ValueError``."""
    classes = sorted(p.name for p in base.iterdir() if p.is_dir() and not _hidden(p.name))
    if len(classes) < 2:
        raise ValueError(
            f"{base} must hold one sub-folder per class (at least 2), found {len(classes)}: "
            f"expected {base}/<class>/*.png")
    return classes


class ImageFile(NamedTuple):
    """An image file of a folder and the index of its class."""

    path: Path
    label: int


@dataclass(frozen=True)
class FolderListing:
    """What :func:`list_folder` found: ``base`` is the folder holding the class folders
    (``root`` or ``root/train``); ``other`` are files with a suffix that is not asked for."""

    base: Path
    classes: list[str]
    files: list[ImageFile]
    other: list[Path]


def _hidden(name: str) -> bool:
    return name.startswith(".")


def list_folder(root: str | os.PathLike, *,
                suffixes: Iterable[str] = IMAGE_SUFFIXES) -> FolderListing:
    """The classes (sorted sub-folder names) and image files of ``root/<class>/**`` or
    ``root/train/<class>/**``, sorted by class then path.

    Hidden files and folders (a name starting with ".") are not part of the data set: they are
    neither listed nor counted, at any depth. Files whose suffix is not in ``suffixes`` are in
    ``other`` (see ``load_folder`` for unreadable ones). ``ValueError`` for a missing folder,
    fewer than two classes, or no image file.
    """
    base = find_class_root(root)
    classes = class_folders(base)
    wanted = {s.lower() for s in suffixes}
    files, other = [], []
    for idx, name in enumerate(classes):
        for f in sorted((base / name).rglob("*")):
            if any(_hidden(part) for part in f.relative_to(base).parts) or not f.is_file():
                continue
            if f.suffix.lower() in wanted:
                files.append(ImageFile(f, idx))
            else:
                other.append(f)
    if not files:
        raise ValueError(f"no image files under {base} (looked for {', '.join(sorted(wanted))}; "
                         f"found {len(other)} other files)")
    return FolderListing(base=base, classes=classes, files=files, other=other)


def load_folder(root: str | os.PathLike, *, channels: int | None = None,
                size: int | None = None, progress: bool = False) -> LabeledImages:
    """Load ``root/<class>/*.png`` (or ``root/train/<class>/*.png``) as a labeled image set.

    Unreadable files are skipped with a warning and listed in ``skipped``; paths are relative
    to ``root`` with posix separators. Raises ``ValueError`` for an empty folder, fewer than two
    classes, or no readable image.
    """
    root = Path(root)
    listing = list_folder(root)
    classes, items = listing.classes, listing.files
    images, labels, paths, skipped = [], [], [], []
    iterator = items
    if progress:
        from tqdm import tqdm
        iterator = tqdm(items, desc="reading images", unit="img")
    for f, label in iterator:
        rel = f.relative_to(root).as_posix()
        try:
            with Image.open(f) as img:
                img.load()
                images.append(img.copy())
        except (UnidentifiedImageError, OSError, SyntaxError):
            skipped.append(rel)
            continue
        labels.append(label)
        paths.append(rel)
    if skipped:
        warnings.warn(f"skipped {len(skipped)} unreadable file(s) under {root}, e.g. {skipped[0]}",
                      stacklevel=2)
    if not images:
        raise ValueError(f"none of the {len(items)} image files under {root} could be read")
    x = to_model_input(images, channels=channels, size=size)
    return LabeledImages(x=x, y=np.asarray(labels, dtype=np.int64), classes=classes,
                         paths=paths, skipped=skipped)


def from_arrays(images: np.ndarray, labels: np.ndarray, *,
                classes: Sequence[str] | None = None, size: int | None = None) -> LabeledImages:
    """Wrap in-memory images ``(N, H, W)`` or ``(N, H, W, C)`` (uint8 0-255 or float 0-1) and
    labels ``(N,)`` (ints 0..K-1) as a ``LabeledImages``."""
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim not in (3, 4):
        raise ValueError(f"images must have shape (N, H, W) or (N, H, W, C), got {images.shape}")
    if images.ndim == 4 and images.shape[-1] not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels last, got shape {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"labels must have shape ({len(images)},), got {labels.shape}")
    if len(images) == 0:
        raise ValueError("no images given")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    num_classes = int(labels.max()) + 1 if classes is None else len(classes)
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must lie in 0..{num_classes - 1}")
    if num_classes < 2:
        raise ValueError("at least 2 classes are needed")
    arr = images.astype(np.float32)
    if images.dtype == np.uint8 or arr.max() > 1.0:
        arr = arr / 255.0
    if arr.ndim == 3:
        arr = arr[:, None]
    else:
        arr = arr.transpose(0, 3, 1, 2)
    channels = arr.shape[1]
    size = size or DEFAULT_SIZE[channels]
    if arr.shape[2:] != (size, size):
        arr = np.stack([_image_to_chw(Image.fromarray(_to_uint8_hwc(a)), channels=channels, size=size)
                        for a in arr])
    names = list(classes) if classes is not None else [str(i) for i in range(num_classes)]
    return LabeledImages(x=np.ascontiguousarray(arr, dtype=np.float32),
                         y=labels.astype(np.int64), classes=names,
                         paths=[str(i) for i in range(len(labels))])


def _to_uint8_hwc(chw: np.ndarray) -> np.ndarray:
    a = np.clip(chw * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)


def to_uint8_image(chw: np.ndarray) -> Image.Image:
    """A model-input item ``(C, H, W)`` in [0, 1] back to a PIL image."""
    return Image.fromarray(_to_uint8_hwc(chw))
