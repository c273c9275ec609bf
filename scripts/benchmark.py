"""Benchmark: DFauLo against loss ranking, TracIn and cleanlab, in one process, same data and model.

    python scripts/benchmark.py [--seeds 0 1 2] [--epochs 8] [--out benchmark]
    python scripts/benchmark.py --suite heldout    # other rates, mixed noise, sklearn digits
    python scripts/benchmark.py --memory 60000     # peak RSS of DFauLo on a generated 60k set
    python scripts/benchmark.py --markdown [--suite heldout]   # the written results as Markdown

Suite "main": MNIST with symmetric 10%, pair 20% and out-of-distribution 10% noise. Suite
"heldout": sets the views vote's constants were not chosen on (symmetric 20%, pair 10%, OOD 5%,
mixed, partial pair on MNIST; symmetric, pair and OOD on sklearn's digits). For each set and seed
it trains the small CNN once
(the "one training run" every wall time is divided by), scores with loss, TracIn (last layer over
checkpoints) and DFauLo on that same model, runs cleanlab on 5-fold out-of-fold probabilities of
the same model architecture (reporting its best scoring method), and simulates a reviewer who
checks DFauLo's top 200 unreviewed items per round, up to 20% of the data, with the meta-ranker
refit after each round. "dfaulo-synthetic-init" is DFauLo with the paper's initial ranker
(synthetic faults) instead of the views vote. Prints a table per seed and the means over seeds,
writes OUT/results.json (suite main, with two plots per noise kind for the first seed) or
OUT/heldout.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detection.metrics import inspected_count, ranking_report, recall_curve  # noqa: E402
from detection.pipeline import SuspicionRanker  # noqa: E402
from detection.sources import noisy_source  # noqa: E402
from detection.train import predict, softmax, train_model  # noqa: E402

SUITES = {
    "main": [("mnist", "symmetric", 0.1), ("mnist", "pair", 0.2), ("mnist", "ood", 0.1)],
    "heldout": [("mnist", "symmetric", 0.2), ("mnist", "pair", 0.1), ("mnist", "ood", 0.05),
                ("mnist", "mixed", 0.1), ("mnist", "partial-pair", 0.2),
                ("digits", "symmetric", 0.1), ("digits", "pair", 0.2), ("digits", "ood", 0.1)],
}
RESULT_FILES = {"main": "results.json", "heldout": "heldout.json"}
METRICS = ["ap", "auroc", "r_precision", "recall@10%", "recall@20%"]


def review_loop(ranker: SuspicionRanker, is_fault: np.ndarray, *, batch: int = 200,
                budget: float = 0.2) -> np.ndarray:
    """Simulate reviewers: each round checks the top ``batch`` unreviewed items, verdicts refit the
    ranker. Returns an effective score (N,) whose order is the order items were inspected in:
    reviewed items in review order, then the rest by the final scores."""
    n = len(is_fault)
    reviewed = np.zeros(n, dtype=bool)
    order: list[int] = []
    limit = int(round(budget * n))
    while reviewed.sum() < limit:
        s = ranker.scores.copy()
        s[reviewed] = -np.inf
        nxt = np.argsort(-s, kind="stable")[:min(batch, limit - int(reviewed.sum()))]
        order.extend(nxt.tolist())
        reviewed[nxt] = True
        ranker.update(nxt, is_fault[nxt])
    rest = np.flatnonzero(~reviewed)
    rest = rest[np.argsort(-ranker.scores[rest], kind="stable")]
    full = np.r_[np.asarray(order, dtype=np.int64), rest]
    eff = np.empty(n)
    eff[full] = np.linspace(1.0, 0.0, n)
    return eff


def cleanlab_scores(x, y, *, num_classes: int, epochs: int, seed: int) -> tuple[dict, float]:
    """cleanlab's label-quality scores on 5-fold out-of-fold probabilities, as suspiciousness
    (1 - quality), for each of its scoring methods; and the wall time."""
    from cleanlab.rank import get_label_quality_scores
    from sklearn.model_selection import StratifiedKFold

    t0 = time.perf_counter()
    probs = np.zeros((len(y), num_classes))
    for k, (tr, te) in enumerate(StratifiedKFold(5, shuffle=True, random_state=seed).split(x, y)):
        r = train_model(x[tr], y[tr], num_classes=num_classes, epochs=epochs, seed=seed + k)
        probs[te] = softmax(predict(r.model, x[te])[0])
    seconds = time.perf_counter() - t0
    out = {m: 1.0 - get_label_quality_scores(y, probs, method=m)
           for m in ("self_confidence", "normalized_margin", "confidence_weighted_entropy")}
    return out, seconds


def run_kind(kind: str, rate: float, *, source: str, epochs: int, seed: int, out: Path | None) -> dict:
    """Every method on one noisy set; plots into ``out`` unless it is None."""
    data, _true, is_fault = noisy_source(source, kind=kind, rate=rate, seed=seed)
    x, y, k = data.x, data.y, data.num_classes
    base = train_model(x, y, num_classes=k, epochs=epochs, seed=seed)
    one_run = base.seconds
    rows, curves, dists = {}, {}, {}
    for method in ("loss", "tracin", "dfaulo"):
        t0 = time.perf_counter()
        r = SuspicionRanker.fit(x, y, num_classes=k, method=method, seed=seed, base=base)
        extra = time.perf_counter() - t0
        rows[method] = {**ranking_report(r.scores, is_fault), "cost_x_training": (one_run + extra) / one_run}
        curves[method], dists[method] = recall_curve(r.scores, is_fault), r.scores
        if method == "dfaulo":
            t0 = time.perf_counter()
            eff = review_loop(r, is_fault)
            loop_seconds = time.perf_counter() - t0
            rep = ranking_report(eff, is_fault)
            ideal10 = min(1.0, inspected_count(len(y), 0.1) / is_fault.sum())
            rows["dfaulo+review"] = {**rep, "cost_x_training": (one_run + extra + loop_seconds) / one_run,
                                     "recall@10%/ideal": rep["recall@10%"] / ideal10,
                                     "rounds": int(np.ceil(0.2 * len(y) / 200))}
            curves["dfaulo+review"] = recall_curve(eff, is_fault)
            t0 = time.perf_counter()
            paper = SuspicionRanker.fit(x, y, num_classes=k, method=method, seed=seed, base=base, initial="synthetic")
            extra = time.perf_counter() - t0
            rows["dfaulo-synthetic-init"] = {**ranking_report(paper.scores, is_fault),
                                             "cost_x_training": (one_run + extra) / one_run}
    cl, cl_seconds = cleanlab_scores(x, y, num_classes=k, epochs=epochs, seed=seed)
    best = max(cl, key=lambda m: ranking_report(cl[m], is_fault)["ap"])
    rows["cleanlab"] = {**ranking_report(cl[best], is_fault), "cost_x_training": cl_seconds / one_run,
                        "scoring_method": best}
    curves["cleanlab"], dists["cleanlab"] = recall_curve(cl[best], is_fault), cl[best]
    if out is not None:
        plot_kind(kind, rate, curves, dists, is_fault, out=out)
    return {"source": source, "noise": kind, "rate": rate, "seed": seed, "items": len(y),
            "faults": int(is_fault.sum()), "one_training_run_seconds": one_run,
            "gates": r.models.gates.round(3).tolist(), "methods": rows}


def plot_kind(kind, rate, curves, dists, is_fault, *, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(is_fault)
    fig, ax = plt.subplots(figsize=(5, 4))
    frac = np.arange(1, n + 1) / n
    ax.plot(frac, np.minimum(np.arange(1, n + 1) / is_fault.sum(), 1), "k:", label="ideal")
    for name, c in curves.items():
        ax.plot(frac, c, label=name)
    ax.set(xlabel="fraction of data inspected", ylabel="fraction of faults found", xlim=(0, 0.4),
           title=f"{kind} {int(rate * 100)}%")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / f"recall_{kind}.png", dpi=110)
    plt.close(fig)
    fig, axes = plt.subplots(1, len(dists), figsize=(3.2 * len(dists), 2.8))
    for ax, (name, s) in zip(axes, dists.items()):
        bins = np.linspace(s.min(), s.max() + 1e-9, 40)
        ax.hist(s[~is_fault], bins=bins, alpha=0.6, label="clean", density=True)
        ax.hist(s[is_fault], bins=bins, alpha=0.6, label="faulty", density=True)
        ax.set_title(name, fontsize=9)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"score distribution, {kind} {int(rate * 100)}%", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / f"scores_{kind}.png", dpi=110)
    plt.close(fig)


def memory_run(n: int, *, epochs: int, seed: int) -> dict:
    """DFauLo on ``n`` generated 28x28 items (MNIST digits tiled with random shifts and noise)."""
    from detection.noise import inject_label_noise
    from detection.sources import load_source

    base = load_source("mnist")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(base), n)
    x = np.roll(base.x[idx], rng.integers(-2, 3), axis=3)
    x = np.clip(x + rng.normal(0, 0.05, x.shape).astype(np.float32), 0, 1)
    y, fault = inject_label_noise(base.y[idx], rate=0.1, seed=seed)
    t0 = time.perf_counter()
    r = SuspicionRanker.fit(x, y, num_classes=10, method="dfaulo", seed=seed, epochs=epochs)
    fit_seconds = time.perf_counter() - t0
    order = np.argsort(-r.scores)
    reviewed = np.r_[order[:100], rng.choice(order[100:], 100, replace=False)]   # top + a spot check
    t0 = time.perf_counter()
    r.update(reviewed, fault[reviewed])
    update_seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"items": n, "epochs": epochs, "peak_rss_mb": peak_mb, "fit_seconds": fit_seconds,
            "update_seconds_200_verdicts": update_seconds, "refit_validation": r.meta.validation, "timings": r.timings,
            "ap": ranking_report(r.scores, fault)["ap"]}


def _name(res: dict) -> str:
    prefix = "" if res.get("source", "mnist") == "mnist" else res["source"] + " "
    return f"{prefix}{res['noise']} {int(round(res['rate'] * 100))}%"


def print_table(results: list[dict]) -> None:
    head = f"{'set':<18}{'method':<22}" + "".join(f"{m:>12}" for m in METRICS) + f"{'cost (x1 run)':>15}"
    print(head)
    print("-" * len(head))
    for res in results:
        for name, row in res["methods"].items():
            print(f"{_name(res):<18}{name:<22}" + "".join(f"{row[m]:>12.3f}" for m in METRICS)
                  + f"{row['cost_x_training']:>15.2f}")


def markdown_table(results: list[dict]) -> str:
    """One seed's results as a Markdown table (for the README)."""
    lines = ["| noise | method | AP | AUROC | R-precision | recall@10% | recall@20% | cost (x one training run) |",
             "|---|---|---|---|---|---|---|---|"]
    for res in results:
        for name, row in res["methods"].items():
            lines.append(f"| {_name(res)} | {name} | "
                         + " | ".join(f"{row[m]:.3f}" for m in METRICS) + f" | {row['cost_x_training']:.2f} |")
    return "\n".join(lines)


def summarize(results: list[dict]) -> list[dict]:
    """Mean and standard deviation over seeds, per set and method: AP, recall@10% (and for the
    review loop its share of the ideal), cost."""
    groups: dict = {}
    for res in results:
        for name, row in res["methods"].items():
            groups.setdefault((_name(res), name), []).append(row)
    out = []
    for (noise, method), rows in groups.items():
        entry = {"noise": noise, "method": method, "seeds": len(rows)}
        for key in ("ap", "recall@10%", "recall@10%/ideal", "cost_x_training"):
            vals = [r[key] for r in rows if key in r]
            if vals:
                entry[key] = float(np.mean(vals))
                entry[key + " sd"] = float(np.std(vals))
        out.append(entry)
    return out


def markdown_summary(summary: list[dict]) -> str:
    """Means over seeds as a Markdown table; the best AP per set in bold."""
    best = {}
    for e in summary:
        if e["method"] != "dfaulo+review":
            best[e["noise"]] = max(best.get(e["noise"], 0.0), round(e["ap"], 3))
    lines = ["| noise | method | AP (mean ± sd) | recall@10% | review loop: recall@10% / ideal | cost (x one training run) |",
             "|---|---|---|---|---|---|"]
    for e in summary:
        ap = f"{e['ap']:.3f} ± {e['ap sd']:.3f}"
        if e["method"] != "dfaulo+review" and round(e["ap"], 3) == best[e["noise"]]:
            ap = f"**{ap}**"
        ideal = f"{e['recall@10%/ideal']:.3f}" if "recall@10%/ideal" in e else ""
        lines.append(f"| {e['noise']} | {e['method']} | {ap} | {e['recall@10%']:.3f} | {ideal} | "
                     f"{e['cost_x_training']:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--suite", default="main", choices=sorted(SUITES))
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--out", type=Path, default=Path("benchmark"))
    p.add_argument("--kinds", nargs="*", help="only these noise kinds of the suite")
    p.add_argument("--memory", type=int, default=0, help="instead: peak memory of DFauLo on N generated items")
    p.add_argument("--markdown", action="store_true", help="instead: print the suite's written results as Markdown")
    args = p.parse_args(argv)
    path = args.out / RESULT_FILES[args.suite]
    if args.markdown:
        doc = json.loads(path.read_text())
        first = [r for r in doc["results"] if r.get("seed", 0) == doc["seeds"][0]]
        print(f"Seeds {doc['seeds']}, measured {doc['machine']['date']}.\n")
        print(markdown_summary(doc["summary"]))
        print(f"\nSeed {doc['seeds'][0]} in full:\n")
        print(markdown_table(first))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(),
               "platform": platform.platform(), "date": date.today().isoformat()}
    if args.memory:
        res = memory_run(args.memory, epochs=2, seed=args.seeds[0])
        res["machine"] = machine
        print(json.dumps(res, indent=1))
        (args.out / "memory.json").write_text(json.dumps(res, indent=1))
        return 0
    sets = [s for s in SUITES[args.suite] if not args.kinds or s[1] in args.kinds]
    results = []
    for seed in args.seeds:
        for source, kind, rate in sets:
            plots = args.out if args.suite == "main" and seed == args.seeds[0] else None
            results.append(run_kind(kind, rate, source=source, epochs=args.epochs, seed=seed, out=plots))
            print(f"done {source} {kind} {rate} seed {seed}", file=sys.stderr, flush=True)
    summary = summarize(results)
    print_table(results)
    print(markdown_summary(summary))
    doc = {"machine": machine, "suite": args.suite, "epochs": args.epochs, "seeds": args.seeds,
           "summary": summary, "results": results}
    path.write_text(json.dumps(doc, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
