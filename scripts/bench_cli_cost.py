"""The whole DFauLo pipeline as a user runs it, against the reference training on the same data.

    python scripts/bench_cli_cost.py [--sources mnist:5000 fashion:10000] [--threads N]

For each source: writes a labeled folder with 10% symmetric label faults
(``make_noisy_dataset.write_noisy_dataset``), times ``python -m detection rank DIR --method dfaulo`` from process
start to exit (importing torch, reading the images, training, DFauLo, writing the CSV), then
trains the benchmark's reference CNN (``reference_peers.RECIPE``) on the same images and labels,
once with its weights in the plain layout (the cost unit of ``scripts/benchmark.py``) and once
with channels-last weights, as the project's own models have them. Prints the ratios and writes
them to ``benchmark/cli-cost.json``. The figures are one run each: report the machine with them.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from make_noisy_dataset import write_noisy_dataset  # noqa: E402
from reference_peers import RECIPE, train_reference  # noqa: E402

from detection.data import load_folder  # noqa: E402
from detection.metrics import ranking_report  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def measure(source: str, limit: int, *, seed: int, work: Path, threads: int) -> dict:
    """One source: the CLI's wall time, the reference trainings' seconds, DFauLo's AP."""
    folder = work / f"{source}-{limit}"
    write_noisy_dataset(folder, source=source, kind="symmetric", rate=0.1, seed=seed, limit=limit)
    out_csv = work / f"{source}-{limit}.csv"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else dict(os.environ)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "detection", "rank", str(folder), "--method", "dfaulo", "--seed", str(seed),
                    "--out", str(out_csv), "--quiet"], check=True, cwd=REPO, env=env)
    cli_seconds = time.perf_counter() - t0
    data = load_folder(folder)
    plain = train_reference(data.x, data.y, num_classes=data.num_classes, seed=seed, tracin=False).seconds
    last = train_reference(data.x, data.y, num_classes=data.num_classes, seed=seed, tracin=False,
                           channels_last=True).seconds
    return {"source": source, "items": len(data.y), "cli_seconds": cli_seconds,
            "reference_seconds": plain, "reference_channels_last_seconds": last,
            "cli_x_reference": cli_seconds / plain, "cli_x_reference_channels_last": cli_seconds / last,
            "ap": _ap(out_csv, folder)}


def _ap(out_csv: Path, folder: Path) -> float:
    """DFauLo's AP from the CLI's CSV (path,label,score) and the folder's ``truth.csv``
    (path,given_label,true_label,is_fault); file names are unique in such a folder."""
    import csv

    with (folder / "truth.csv").open() as f:
        fault = {Path(r["path"]).name: r["is_fault"] == "1" for r in csv.DictReader(f)}
    with out_csv.open() as f:
        ranked = list(csv.DictReader(f))
    scores = np.array([float(r["score"]) for r in ranked])
    is_fault = np.array([fault[Path(r["path"]).name] for r in ranked])
    return float(ranking_report(scores, is_fault)["ap"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sources", nargs="+", default=["mnist:5000", "fashion:10000"],
                   help="SOURCE:LIMIT pairs (default mnist:5000 fashion:10000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads in the CLI (0: its default)")
    p.add_argument("--out", type=Path, default=REPO / "benchmark" / "cli-cost.json")
    args = p.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory(prefix="cli-cost-") as tmp:
        for item in args.sources:
            source, _, limit = item.partition(":")
            if not limit.isdigit():
                print(f"error: --sources takes SOURCE:LIMIT, got {item!r}", file=sys.stderr)
                return 2
            run = measure(source, int(limit), seed=args.seed, work=Path(tmp), threads=args.threads)
            runs.append(run)
            print(f"{source} {run['items']}: CLI {run['cli_seconds']:.1f} s = {run['cli_x_reference']:.2f}x the "
                  f"reference training ({run['reference_seconds']:.1f} s), {run['cli_x_reference_channels_last']:.2f}x "
                  f"with channels-last weights ({run['reference_channels_last_seconds']:.1f} s); AP {run['ap']}",
                  flush=True)
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    doc = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "date": date.today().isoformat()},
           "commit": commit, "reference_recipe": vars(RECIPE), "runs": runs}
    args.out.write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
