"""How long a request thread waits while a process runs its first fit, with and without the
preload the backend does before serving (``detection.train.import_lazy_modules``).

    python scripts/bench_first_fit.py [--items 2000] [--runs 2]

Each run is a fresh process: a thread sleeps 10 ms in a loop beside ``SuspicionRanker.fit`` on
random 28x28 images, and the extra time each sleep took is what a request thread (the backend's
``/health``) would have waited for the GIL and the cores. Prints one line per run.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

RUN = """
import sys, threading, time
import numpy as np
from detection.pipeline import SuspicionRanker
if {preload}:
    from detection.train import import_lazy_modules
    import_lazy_modules()
waits, stop = [], threading.Event()
def probe():
    while not stop.is_set():
        t = time.perf_counter(); time.sleep(0.01); waits.append(time.perf_counter() - t - 0.01)
thread = threading.Thread(target=probe); thread.start()
rng = np.random.default_rng(0)
x = rng.random(({items}, 1, 28, 28), dtype=np.float32); y = rng.integers(0, 10, {items})
t0 = time.perf_counter(); SuspicionRanker.fit(x, y, num_classes=10, seed=0)
fit = time.perf_counter() - t0
stop.set(); thread.join()
ms = np.array(waits) * 1000
print(f"fit {{fit:.1f}} s, {{len(ms)}} probes, extra wait p50 {{np.percentile(ms, 50):.1f}} ms, "
      f"p99 {{np.percentile(ms, 99):.1f}} ms, max {{ms.max():.0f}} ms, over 100 ms: {{(ms > 100).sum()}}")
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=2, help="runs of each kind, alternating")
    args = ap.parse_args(argv)
    if args.items < 100 or args.runs < 1:
        ap.error("--items must be at least 100 and --runs at least 1")
    for _ in range(args.runs):
        for preload in (False, True):
            code = RUN.format(preload=preload, items=args.items)
            res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                                 text=True, check=True)
            print(f"{'preloaded' if preload else 'lazy     '}: {res.stdout.strip()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
