"""Benchmark: DFauLo against peers from an independent reference model, on seeded fault scenarios.

    python scripts/benchmark.py --draw dev --count 6 [--sources mnist digits] [--threads 1]
    python scripts/benchmark.py --draw test --count 24 --frozen   # only with the code frozen (committed)
    python scripts/benchmark.py --draw test --count 24 --frozen --shard 1/2 --threads 1  # and 2/2 beside it,
    python scripts/benchmark.py --draw test --merge 2     # then the shards' results as one draw
    python scripts/benchmark.py --draw test --start 24 --count 24 --frozen   # a fresh test draw
    python scripts/benchmark.py --markdown [--draw dev]    # the written results as Markdown
    python scripts/benchmark.py --memory 60000             # peak RSS and wall time of DFauLo on 60k Fashion-MNIST

Scenarios come from ``scenarios.py``: the "dev" draw is the one to tune on; the "test" draw is run
only once the code is frozen (it needs --frozen, refuses to run with uncommitted changes in
detection/ or in the benchmark's scripts, and records the commit). In each scenario the reference CNN of
``reference_peers.py`` (a fixed recipe) is trained once: its training wall time is the cost unit,
and the peers come from it (loss, TracIn, AUM, cleanlab on 5-fold out-of-fold probabilities,
cleanlab's out-of-distribution score on its features). The project's own model gives two more
peers ("own-loss", "own-tracin") and the method under test, DFauLo (``SuspicionRanker``, as the CLI
runs it, minus process start and image loading). "dfaulo+review" is the order a reviewer sees who
checks DFauLo's top 200 unreviewed items per round, up to 20% of the data, with the meta-ranker
refit after each round. Per scenario: every method's AP, the best peer, DFauLo's AP minus the best
peer's AP; over the scenarios: the worst case and the mean of that gap. Writes
OUT/scenarios-<draw>.json, or OUT/scenarios-<draw>-from-<start>.json with --start (scenarios
from that index on: a test draw that no earlier run has seen). A finished test-draw file is
never overwritten.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reference_peers import PEERS, RECIPE, reference_peers  # noqa: E402
from scenarios import DRAWS, SOURCE_LIMITS, Scenario, draw_scenarios, realize  # noqa: E402

from detection.signals import ranker_inputs  # noqa: E402
from detection.metrics import inspected_count, ranking_report  # noqa: E402
from detection.pipeline import SuspicionRanker  # noqa: E402
from detection.train import train_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FROZEN_PATHS = ("detection", "scripts/benchmark.py", "scripts/scenarios.py", "scripts/reference_peers.py")
OWN_PEERS = ("own-loss", "own-tracin")
METRICS = ("ap", "auroc", "recall@10%")


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


def _row(scores: np.ndarray, is_fault: np.ndarray, seconds: float, unit: float) -> dict:
    rep = ranking_report(scores, is_fault)
    return {**{m: rep[m] for m in METRICS}, "seconds": seconds, "cost_x_reference": seconds / unit}


def run_scenario(scenario: Scenario, *, epochs: int = 8, review: bool = True, dump: Path | None = None) -> dict:
    """Every method on one scenario; returns its JSON-ready result. ``dump`` (a folder): also
    write the scenario's signals there (:func:`dump_signals`), to compare rankings offline."""
    images, planted = realize(scenario)
    x, y, k, is_fault = images.x, images.y, images.num_classes, planted.is_fault
    peers = reference_peers(x, y, num_classes=k, seed=scenario.seed, channels_last=True)
    unit = peers.reference_seconds
    rows = {name: _row(peers.scores[name], is_fault, peers.seconds[name], unit) for name in PEERS}
    base = train_model(x, y, num_classes=k, epochs=epochs, seed=scenario.seed)
    for method, name in (("loss", "own-loss"), ("tracin", "own-tracin")):
        t0 = time.perf_counter()
        r = SuspicionRanker.fit(x, y, num_classes=k, method=method, seed=scenario.seed, base=base)
        rows[name] = _row(r.scores, is_fault, base.seconds + time.perf_counter() - t0, unit)
    t0 = time.perf_counter()
    ranker = SuspicionRanker.fit(x, y, num_classes=k, method="dfaulo", seed=scenario.seed, base=base)
    dfaulo_seconds = base.seconds + time.perf_counter() - t0
    rows["dfaulo"] = _row(ranker.scores, is_fault, dfaulo_seconds, unit)
    rows["dfaulo-vote"] = _row(vote_alone(ranker), is_fault, dfaulo_seconds, unit)
    rows["dfaulo"]["stages"] = {"train": base.seconds, **ranker.timings.get("dfaulo_stages", {})}
    rows["dfaulo"]["cost_x_reference_channels_last"] = dfaulo_seconds / peers.channels_last_seconds
    if dump is not None:
        dump_signals(dump / f"{scenario.draw}-{scenario.index}.npz", ranker=ranker, base=base, peers=peers.scores,
                     is_fault=is_fault)
    if review:
        t0 = time.perf_counter()
        eff = review_loop(ranker, is_fault)
        rows["dfaulo+review"] = _row(eff, is_fault, dfaulo_seconds + time.perf_counter() - t0, unit)
        ideal = min(1.0, inspected_count(len(y), 0.1) / is_fault.sum())
        rows["dfaulo+review"]["recall@10%/ideal"] = rows["dfaulo+review"]["recall@10%"] / ideal
    best = max(PEERS + OWN_PEERS, key=lambda m: rows[m]["ap"])
    return {"scenario": scenario.name, "draw": scenario.draw, "index": scenario.index, "source": scenario.source,
            "parts": [vars(p) for p in scenario.parts], "seed": scenario.seed, "items": len(y),
            "faults": int(is_fault.sum()), "reference_seconds": unit, "best_peer": best,
            "gap_to_best_peer": rows["dfaulo"]["ap"] - rows[best]["ap"],
            "gap_to_ref_loss": rows["dfaulo"]["ap"] - rows["ref-loss"]["ap"], "methods": rows,
            "mixture": ranker.models.mixture.summary() if ranker.models.mixture is not None else None}


def dump_signals(path: Path, *, ranker: SuspicionRanker, base, peers: dict, is_fault: np.ndarray) -> None:
    """One scenario's signals in one ``.npz``: DFauLo's ``features`` (N, F) and ``scores`` (N,),
    the vote alone, the labels, what training saw of each item (``visit_loss``, ``visit_margin``,
    (N, epochs)), every reference peer's scores (``peer_<name>``) and the ground truth
    ``is_fault`` (N,)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, features=ranker.features, scores=ranker.scores, vote=vote_alone(ranker),
                        labels=ranker.labels, visit_loss=base.visit_loss, visit_margin=base.visit_margin,
                        is_fault=is_fault, num_classes=ranker.num_classes, checkpoints=len(ranker.models.ckpt_lrs),
                        **{f"peer_{k}": v for k, v in peers.items()})


def vote_alone(ranker: SuspicionRanker) -> np.ndarray:
    """``(N,)``: the ranking before verdicts of initial="vote" (the views vote without the mixture
    evidence), from the same fitted ranker."""
    models = copy.copy(ranker.models)
    models.mixture = models.vote_sorted = models.fault_kinds = None
    return ranker_inputs(ranker.features, models, ranker.reference)[:, -1]


def summarize(results: list[dict]) -> dict:
    """Over scenarios: worst and mean gap of DFauLo's AP to the best peer's, the gap to the
    reference loss, how often DFauLo is within 0.01 of the best peer, mean AP per method."""
    if not results:
        raise ValueError("no results to summarize")
    gaps = np.array([r["gap_to_best_peer"] for r in results])
    worst = results[int(gaps.argmin())]
    methods = list(results[0]["methods"])
    return {"scenarios": len(results), "worst_gap_to_best_peer": float(gaps.min()),
            "worst_scenario": worst["scenario"], "mean_gap_to_best_peer": float(gaps.mean()),
            "worst_gap_to_ref_loss": float(min(r["gap_to_ref_loss"] for r in results)),
            "within_0.01_of_best_peer": int((gaps >= -0.01).sum()),
            "mean_ap": {m: float(np.mean([r["methods"][m]["ap"] for r in results if m in r["methods"]]))
                        for m in methods},
            "mean_dfaulo_cost_x_reference": float(np.mean([r["methods"]["dfaulo"]["cost_x_reference"]
                                                           for r in results])),
            "max_dfaulo_cost_x_reference": float(max(r["methods"]["dfaulo"]["cost_x_reference"] for r in results)),
            **_channels_last_cost(results)}


def _channels_last_cost(results: list[dict]) -> dict:
    """Mean and largest DFauLo cost against the reference trained with channels-last weights, where
    the results measured it (runs before 2026-12-03 did not)."""
    costs = [r["methods"]["dfaulo"]["cost_x_reference_channels_last"] for r in results
             if "cost_x_reference_channels_last" in r["methods"]["dfaulo"]]
    if not costs:
        return {}
    return {"mean_dfaulo_cost_x_reference_channels_last": float(np.mean(costs)),
            "max_dfaulo_cost_x_reference_channels_last": float(max(costs))}


def markdown(doc: dict) -> str:
    """The written results as Markdown: one row per scenario, then the summary."""
    cols = list(PEERS + OWN_PEERS)
    head = ["scenario", "items", "faults", "DFauLo AP", "vote alone", *cols, "best peer", "DFauLo - best",
            "review recall@10% / ideal", "DFauLo cost (x ref. training)"]
    lines = [f"Draw **{doc['draw']}**, {doc['summary']['scenarios']} scenarios, commit {doc['commit']}, "
             f"measured {doc['machine']['date']} ({doc['machine']['cpus']} CPUs, {doc['threads']} torch threads).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in doc["results"]:
        m = r["methods"]
        review = m.get("dfaulo+review", {}).get("recall@10%/ideal")
        vote = m.get("dfaulo-vote", {}).get("ap")
        cells = [r["scenario"], str(r["items"]), str(r["faults"]), f"{m['dfaulo']['ap']:.3f}",
                 "" if vote is None else f"{vote:.3f}",
                 *[(f"**{m[c]['ap']:.3f}**" if c == r["best_peer"] else f"{m[c]['ap']:.3f}") for c in cols],
                 r["best_peer"], f"{r['gap_to_best_peer']:+.3f}", "" if review is None else f"{review:.3f}",
                 f"{m['dfaulo']['cost_x_reference']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    s = doc["summary"]
    lines += ["", f"Worst case of DFauLo AP - best peer AP: **{s['worst_gap_to_best_peer']:+.3f}** "
                  f"({s['worst_scenario']}); mean {s['mean_gap_to_best_peer']:+.3f}; DFauLo within 0.01 of "
                  f"the best peer in {s['within_0.01_of_best_peer']} of {s['scenarios']}; worst DFauLo AP - "
                  f"reference loss AP: {s['worst_gap_to_ref_loss']:+.3f}; mean DFauLo cost "
                  f"{s['mean_dfaulo_cost_x_reference']:.2f}x the reference training"
                  + (f" (largest {s['max_dfaulo_cost_x_reference']:.2f}x)" if "max_dfaulo_cost_x_reference" in s else "")
                  + (f"; against the reference trained with channels-last weights "
                     f"{s['mean_dfaulo_cost_x_reference_channels_last']:.2f}x (largest "
                     f"{s['max_dfaulo_cost_x_reference_channels_last']:.2f}x)"
                     if "mean_dfaulo_cost_x_reference_channels_last" in s else "") + ".",
              "", "Mean AP: " + ", ".join(f"{k} {v:.3f}" for k, v in s["mean_ap"].items()) + "."]
    return "\n".join(lines)


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)`` with 1 <= K <= N."""
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard takes K/N (e.g. 1/2), got {text!r}") from None
    if not 1 <= k <= n:
        raise ValueError(f"--shard K/N needs 1 <= K <= N, got {text!r}")
    return k, n


def result_stem(draw: str, start: int = 0) -> str:
    """The results' file name part: the draw, and the first index when it is not 0."""
    return draw if start == 0 else f"{draw}-from-{start}"


def shard_path(out: Path, stem: str, shard: tuple[int, int]) -> Path:
    return out / f"scenarios-{stem}.shard-{shard[0]}-of-{shard[1]}.json"


def merge_shards(out: Path, stem: str, n: int) -> dict:
    """The results of shards 1..N of a run (``stem``: see :func:`result_stem`) as one document
    (scenarios in draw order); every shard must be complete and all must come from the same
    commit."""
    docs = []
    for k in range(1, n + 1):
        path = shard_path(out, stem, (k, n))
        if not path.is_file():
            raise ValueError(f"{path} does not exist; run --shard {k}/{n} first")
        docs.append(json.loads(path.read_text()))
    if not all(d.get("complete") for d in docs):
        raise ValueError("a shard has not finished: " + ", ".join(
            str(shard_path(out, stem, (k + 1, n))) for k, d in enumerate(docs) if not d.get("complete")))
    if len({d["commit"] for d in docs}) != 1:
        raise ValueError(f"the shards come from different commits: {sorted({d['commit'] for d in docs})}")
    results = sorted((r for d in docs for r in d["results"]), key=lambda r: r["index"])
    return {**{k: v for k, v in docs[0].items() if k not in ("results", "summary", "shard", "complete")},
            "command": " and ".join(d["command"] for d in docs) + " (run side by side, merged)",
            "summary": summarize(results), "results": results}


def code_state() -> tuple[str, bool]:
    """(commit, whether detection/ or the benchmark's scripts have uncommitted changes)."""
    def git(*args):
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True).stdout
    try:
        return git("rev-parse", "--short", "HEAD").strip(), bool(git("status", "--porcelain", "--", *FROZEN_PATHS).strip())
    except (OSError, subprocess.CalledProcessError):
        return "unknown", True


def memory_run(n: int, *, epochs: int, seed: int) -> dict:
    """DFauLo on the first ``n`` real Fashion-MNIST training images (at most 60,000) with 10%
    symmetric label noise: peak memory and wall time of the fit, 200 verdicts after it."""
    from detection.noise import inject_label_noise
    from detection.sources import load_source

    data = load_source("fashion", limit=n, seed=seed)
    y, fault = inject_label_noise(data.y, rate=0.1, seed=seed, num_classes=data.num_classes)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    r = SuspicionRanker.fit(data.x, y, num_classes=data.num_classes, method="dfaulo", seed=seed, epochs=epochs)
    fit_seconds = time.perf_counter() - t0
    order = np.argsort(-r.scores)
    reviewed = np.r_[order[:100], rng.choice(order[100:], 100, replace=False)]   # top + a spot check
    t0 = time.perf_counter()
    r.update(reviewed, fault[reviewed])
    update_seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"source": "fashion", "items": len(data.x), "epochs": epochs, "peak_rss_mb": peak_mb,
            "fit_seconds": fit_seconds, "update_seconds_200_verdicts": update_seconds,
            "refit_validation": r.meta.validation, "timings": r.timings,
            "ap": ranking_report(r.scores, fault)["ap"]}


def _finished(path: Path) -> bool:
    try:
        return bool(json.loads(path.read_text()).get("complete"))
    except (OSError, ValueError):
        return False


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--draw", default="dev", choices=sorted(DRAWS))
    p.add_argument("--count", type=int, default=6, help="how many scenarios of the draw")
    p.add_argument("--start", type=int, default=0, help="the first scenario's index in the draw (default 0)")
    p.add_argument("--sources", nargs="+", choices=sorted(SOURCE_LIMITS), help="only scenarios of these sources")
    p.add_argument("--epochs", type=int, default=8, help="the project's own training (the reference's is fixed)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--frozen", action="store_true", help="the code is frozen: required for the test draw")
    p.add_argument("--no-review", action="store_true", help="skip the simulated review loop")
    p.add_argument("--dump", type=Path, default=None,
                   help="also write each scenario's signals to DIR/<draw>-<index>.npz (to compare rankings offline)")
    p.add_argument("--out", type=Path, default=REPO / "benchmark")
    p.add_argument("--markdown", action="store_true", help="instead: print the draw's written results as Markdown")
    p.add_argument("--shard", default=None, help="K/N: only every N-th scenario from the K-th (run N side by side)")
    p.add_argument("--merge", type=int, default=0, help="instead: merge the draw's N finished shards")
    p.add_argument("--memory", type=int, default=0,
                   help="instead: peak memory and wall time of DFauLo on N real Fashion-MNIST items")
    args = p.parse_args(argv)
    stem = result_stem(args.draw, args.start)
    path = args.out / f"scenarios-{stem}.json"
    try:
        shard = parse_shard(args.shard) if args.shard else None
        if args.merge:
            doc = merge_shards(args.out, stem, args.merge)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.merge:
        path.write_text(json.dumps(doc, indent=1, default=float))
        print(markdown(doc))
        return 0
    if args.markdown:
        if not path.is_file():
            print(f"error: {path} does not exist; run the {args.draw} draw first", file=sys.stderr)
            return 2
        print(markdown(json.loads(path.read_text())))
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(),
               "platform": platform.platform(), "date": date.today().isoformat()}
    commit, dirty = code_state()
    if args.draw == "test" and not args.frozen:
        print("error: the test draw is run once, on frozen code, and reported as such; pass --frozen to confirm",
              file=sys.stderr)
        return 2
    if args.draw == "test" and dirty:
        print(f"error: the test draw runs only on frozen code; commit the changes in {', '.join(FROZEN_PATHS)} first",
              file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    if args.memory:
        res = {**memory_run(args.memory, epochs=args.epochs, seed=0), "machine": machine,
               "commit": commit, "dirty": dirty}
        print(json.dumps(res, indent=1))
        (args.out / "memory.json").write_text(json.dumps(res, indent=1))
        return 0
    try:
        scenarios = draw_scenarios(args.draw, args.count, sources=args.sources, start=args.start)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if shard:
        scenarios, path = scenarios[shard[0] - 1::shard[1]], shard_path(args.out, stem, shard)
    if args.draw == "test" and _finished(path):
        print(f"error: {path} holds a finished test draw; those scenarios are spent: take new ones "
              f"with --start (or move the file away)", file=sys.stderr)
        return 2
    doc = {"machine": machine, "draw": args.draw, "start": args.start, "commit": commit + ("-dirty" if dirty else ""),
           "threads": torch.get_num_threads(), "epochs": args.epochs, "reference_recipe": vars(RECIPE),
           "command": " ".join(["python", "scripts/benchmark.py", *(argv if argv is not None else sys.argv[1:])]),
           "shard": args.shard, "complete": False, "results": []}
    for s in scenarios:
        doc["results"].append(run_scenario(s, epochs=args.epochs, review=not args.no_review, dump=args.dump))
        r = doc["results"][-1]
        print(f"{s.name}: DFauLo AP {r['methods']['dfaulo']['ap']:.3f}, best peer {r['best_peer']} "
              f"{r['methods'][r['best_peer']]['ap']:.3f}", file=sys.stderr, flush=True)
        path.write_text(json.dumps(doc, indent=1, default=float))  # what is done so far survives a crash
    doc.update(complete=True, summary=summarize(doc["results"]))
    path.write_text(json.dumps(doc, indent=1, default=float))
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
