"""Experiment for issue 11 item 3: can faults planted in the run pick the right signal?

    python scripts/probe_selection_experiment.py --draw dev --count 14 [--threads 1]

Per scenario: (1) train the reference CNN on the data and estimate where its labels look wrong:
Q(j | i) from the items labeled i that the model puts in class j != i (plus one count per cell,
so random flips are covered); (2) plant probes: 4% of the items again, shifted by one pixel, with
a label drawn from Q(. | their label) (items the model agrees with, so most are clean), and 1%
synthetic outliers (``dfaulo.synthetic_noise_inputs``) with random labels; (3) train the reference
CNN again on data + probes and score everything with each candidate signal (loss, AUM, TracIn,
kNN outlier score, mean rank of loss/AUM/TracIn); (4) pick the candidate with the best AP at
finding the probes among all items, and report its AP on the real faults (probes left out), next
to the best candidate in hindsight. Writes OUT/probe-selection-<draw>.json. A measurement, not
part of the product.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reference_peers import train_reference  # noqa: E402
from scenarios import DRAWS, SOURCE_LIMITS, draw_scenarios, realize  # noqa: E402

from detection.dfaulo import synthetic_noise_inputs  # noqa: E402
from detection.metrics import ranking_report  # noqa: E402
from detection.train import cross_entropy, predict, softmax  # noqa: E402

FLIP_PROBES, OUTLIER_PROBES = 0.04, 0.01


def rank(s: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(s, kind="stable"), kind="stable") / max(1, len(s) - 1)


def signals(run, x: np.ndarray, y: np.ndarray) -> dict:
    from cleanlab.outlier import OutOfDistribution
    logits, feats = predict(run.model, x)
    out = {"loss": cross_entropy(softmax(logits.astype(np.float64)), y), "aum": -run.margins.mean(1).astype(float),
           "tracin": run.tracin,
           "ood": 1.0 - OutOfDistribution().fit_score(features=feats.astype(np.float64), verbose=False)}
    out["mean-rank(loss,aum,tracin)"] = (rank(out["loss"]) + rank(out["aum"]) + rank(out["tracin"])) / 3
    return out


def probes(x, y, model, *, num_classes: int, seed: int):
    rng = np.random.default_rng(seed)
    pred = softmax(predict(model, x)[0]).argmax(1)
    counts = np.ones((num_classes, num_classes))
    np.add.at(counts, (y[pred != y], pred[pred != y]), 1)
    np.fill_diagonal(counts, 0)
    q = counts / counts.sum(1, keepdims=True)
    agree = np.flatnonzero(pred == y)
    idx = rng.choice(agree, size=int(round(FLIP_PROBES * len(y))), replace=False)
    px = np.roll(x[idx], shift=int(rng.choice([-1, 1])), axis=int(rng.choice([2, 3])))
    py = np.array([rng.choice(num_classes, p=q[c]) for c in y[idx]])
    m = int(round(OUTLIER_PROBES * len(y)))
    ox = synthetic_noise_inputs(m, input_shape=tuple(x.shape[1:]), seed=seed)
    oy = rng.integers(0, num_classes, m)
    return np.concatenate([px, ox]).astype(np.float32), np.concatenate([py, oy]).astype(np.int64)


def run(scenario) -> dict:
    images, planted = realize(scenario)
    x, y, k, fault = images.x, images.y, images.num_classes, planted.is_fault
    t0 = time.perf_counter()
    first = train_reference(x, y, num_classes=k, seed=scenario.seed, tracin=False)
    px, py = probes(x, y, first.model, num_classes=k, seed=scenario.seed)
    xa, ya = np.concatenate([x, px]), np.concatenate([y, py])
    second = train_reference(xa, ya, num_classes=k, seed=scenario.seed + 1)
    cand = signals(second, xa, ya)
    seconds = time.perf_counter() - t0
    is_probe = np.r_[np.zeros(len(y), bool), np.ones(len(py), bool)]
    probe_ap = {n: ranking_report(s, is_probe)["ap"] for n, s in cand.items()}
    real_ap = {n: ranking_report(s[:len(y)], fault)["ap"] for n, s in cand.items()}
    chosen = max(probe_ap, key=probe_ap.get)
    hindsight = max(real_ap, key=real_ap.get)
    return {"scenario": scenario.name, "index": scenario.index, "chosen": chosen, "chosen_ap": real_ap[chosen],
            "hindsight": hindsight, "hindsight_ap": real_ap[hindsight], "probe_ap": probe_ap, "real_ap": real_ap,
            "seconds": seconds, "reference_seconds": first.seconds}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--draw", default="dev", choices=sorted(DRAWS))
    p.add_argument("--count", type=int, default=14)
    p.add_argument("--sources", nargs="+", choices=sorted(SOURCE_LIMITS))
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "benchmark")
    args = p.parse_args(argv)
    if args.draw == "test":
        print("error: an experiment is tuned on the dev draw only", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    results = []
    for s in draw_scenarios(args.draw, args.count, sources=args.sources):
        r = run(s)
        results.append(r)
        print(f"{r['scenario']}: chosen {r['chosen']} {r['chosen_ap']:.3f}, hindsight {r['hindsight']} "
              f"{r['hindsight_ap']:.3f}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"probe-selection-{args.draw}.json").write_text(json.dumps(
        {"command": " ".join(["python", "scripts/probe_selection_experiment.py", *(argv or sys.argv[1:])]),
         "flip_probes": FLIP_PROBES, "outlier_probes": OUTLIER_PROBES, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
