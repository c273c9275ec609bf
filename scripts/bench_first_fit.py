"""How long a request thread waits while a process runs its first fit, with and without the
preload the backend does before serving (``detection.train.import_lazy_modules``).

    python scripts/bench_first_fit.py [--items 2000] [--runs 2]

Each run is a fresh process (this script with ``--one lazy|preloaded``): a thread sleeps 10 ms in
a loop beside ``SuspicionRanker.fit`` on random 28x28 images, and the extra time each sleep took
is what a request thread (the backend's ``/health``) would have waited for the GIL and the
cores. Prints one line per run.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KINDS = ("lazy", "preloaded")


def measure(*, preload: bool, items: int) -> str:
    """One first fit in this process, with a sleeping thread beside it; a line of figures."""
    sys.path.insert(0, str(REPO))
    import numpy as np

    from detection.pipeline import SuspicionRanker
    if preload:
        from detection.train import import_lazy_modules
        import_lazy_modules()
    waits, stop = [], threading.Event()

    def probe() -> None:
        while not stop.is_set():
            t = time.perf_counter()
            time.sleep(0.01)
            waits.append(time.perf_counter() - t - 0.01)

    thread = threading.Thread(target=probe)
    thread.start()
    rng = np.random.default_rng(0)
    x = rng.random((items, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, items)
    t0 = time.perf_counter()
    SuspicionRanker.fit(x, y, num_classes=10, seed=0)
    fit = time.perf_counter() - t0
    stop.set()
    thread.join()
    ms = np.array(waits) * 1000
    return (f"fit {fit:.1f} s, {len(ms)} probes, extra wait p50 {np.percentile(ms, 50):.1f} ms, "
            f"p99 {np.percentile(ms, 99):.1f} ms, max {ms.max():.0f} ms, "
            f"over 100 ms: {(ms > 100).sum()}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=2, help="runs of each kind, alternating")
    ap.add_argument("--one", choices=KINDS, help=argparse.SUPPRESS)  # one run, in this process
    args = ap.parse_args(argv)
    if args.items < 100 or args.runs < 1:
        ap.error("--items must be at least 100 and --runs at least 1")
    if args.one:
        print(measure(preload=args.one == "preloaded", items=args.items))
        return 0
    for _ in range(args.runs):
        for kind in KINDS:
            cmd = [sys.executable, __file__, "--one", kind, "--items", str(args.items)]
            res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True)
            print(f"{kind:9}: {res.stdout.strip()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
