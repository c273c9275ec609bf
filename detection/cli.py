"""Command line: rank the items of an image folder by suspiciousness.

    python -m detection rank DIR --out scores.csv [--method dfaulo|tracin|loss] [--seed N]
                                 [--epochs N] [--grid top.png] [--top K]

The arguments are checked (the folder and its class folders, where the outputs go, the numbers)
before torch, scikit-learn and torchvision are imported: loading those takes seconds, and a wrong
folder should not wait for them.
"""
from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
import warnings
from pathlib import Path

from . import DEVICES, METHODS


def check_arguments(root: Path, *, out: Path, epochs: int | None, grid: Path | None, top: int) -> None:
    """Raise ``ValueError`` for arguments ``rank_folder`` cannot work with. Imports nothing heavy
    (the folder listing needs only PIL's suffix list and numpy)."""
    from .data import list_folder

    if epochs is not None and epochs < 1:
        raise ValueError(f"--epochs must be at least 1, got {epochs}")
    if top < 1:
        raise ValueError(f"--top must be at least 1, got {top}")
    writable_file(out, option="--out")
    if grid is not None:
        writable_file(grid, option="--grid")
    list_folder(root)   # a folder, at least two class folders, at least one image file


def writable_file(path: Path, *, option: str) -> None:
    """``path`` can be written as a file: it is not a folder, and its nearest existing parent is
    a folder we may write in (missing parents are created later)."""
    if path.is_dir():
        raise ValueError(f"{option} {path} is a folder; give a file name")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{option} {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {path}: cannot write in {parent}")


def rank_folder(root: Path, *, out: Path, method: str, seed: int, epochs: int | None,
                grid: Path | None, top: int, progress: bool = True, device: str = "cpu") -> dict:
    """Load ``root``, fit the ranker, write ``out`` (path,label,score sorted by score descending)
    and optionally a grid picture of the ``top`` suspects. Returns a small summary."""
    import numpy as np
    import torch

    from .data import load_folder
    from .grid import suspects_grid
    from .pipeline import SuspicionRanker

    torch.manual_seed(seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_folder(root, progress=progress)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    ranker = SuspicionRanker.fit(data.x, data.y, num_classes=data.num_classes, method=method, seed=seed,
                                 epochs=epochs, progress=progress, device=device)
    order = np.argsort(-ranker.scores, kind="stable")
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "score"])
        for i in order:
            w.writerow([data.paths[i], data.classes[data.y[i]], f"{ranker.scores[i]:.6f}"])
    if grid is not None:
        k = order[:min(top, len(order))]
        captions = [f"{data.classes[data.y[i]]}>{data.classes[ranker.predicted[i]]}" for i in k]
        suspects_grid(data.x[k], captions, path=grid)
    return {"items": len(data), "skipped": len(data.skipped), "classes": data.num_classes,
            "seconds": ranker.timings.get("total", 0.0)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m detection",
                                     description="Rank labeled images by how likely their label is wrong.")
    sub = parser.add_subparsers(dest="command", required=True)
    rank = sub.add_parser("rank", help="score every image of DIR/<class>/* (or DIR/train/<class>/*)")
    rank.add_argument("dir", type=Path)
    rank.add_argument("--out", type=Path, required=True, help="CSV to write: path,label,score")
    rank.add_argument("--method", choices=METHODS, default="dfaulo")
    rank.add_argument("--seed", type=int, default=0)
    rank.add_argument("--epochs", type=int, default=None, help="training epochs (default 8)")
    rank.add_argument("--grid", type=Path, default=None, help="PNG of the top suspects (given>guessed label)")
    rank.add_argument("--top", type=int, default=32, help="how many suspects the grid shows")
    rank.add_argument("--quiet", action="store_true", help="no progress bars")
    rank.add_argument("--device", choices=DEVICES, default="auto",
                      help="where training runs (auto: CUDA when available, else the CPU)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        check_arguments(args.dir, out=args.out, epochs=args.epochs, grid=args.grid, top=args.top)
        info = rank_folder(args.dir, out=args.out, method=args.method, seed=args.seed, epochs=args.epochs,
                           grid=args.grid, top=args.top, progress=not args.quiet, device=args.device)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"ranked {info['items']} images in {info['classes']} classes ({info['skipped']} unreadable skipped) "
          f"in {info['seconds']:.1f} s -> {args.out}" + (f", grid {args.grid}" if args.grid else ""))
    return 0
