"""The benchmark's simulated reviewer loop (scripts/benchmark.py)."""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from benchmark import review_loop  # noqa: E402


class Recorder:
    """A ranker stand-in: fixed scores until told, records the verdict batches it gets."""

    def __init__(self, scores, after=None):
        self.scores = np.asarray(scores, dtype=float)
        self.after = after
        self.batches = []

    def update(self, idx, fault):
        self.batches.append((list(idx), list(fault)))
        if self.after is not None:
            self.scores = self.after.copy()


def test_review_loop_inspects_top_batches_then_the_rest_by_final_scores():
    n = 20
    scores = np.arange(n, dtype=float)[::-1]            # item 0 most suspicious
    final = np.arange(n, dtype=float)                    # after the first verdicts: item 19 first
    fault = np.zeros(n, bool)
    fault[[0, 19]] = True
    ranker = Recorder(scores, after=final)
    eff = review_loop(ranker, fault, batch=2, budget=0.2)   # 4 reviews: 2 rounds of 2
    order = list(np.argsort(-eff, kind="stable"))
    assert ranker.batches[0] == ([0, 1], [True, False])
    assert ranker.batches[1][0] == [19, 18]              # second round follows the refit scores
    assert order[:4] == [0, 1, 19, 18]                    # inspected in review order
    assert order[4:6] == [17, 16]                        # then the rest by the final scores
    assert sorted(order) == list(range(n))


def test_summary_averages_over_seeds_and_marks_the_best_ap():
    from benchmark import markdown_summary, summarize

    def res(seed, ap_loss, ap_dfaulo):
        row = {"recall@10%": 0.9, "cost_x_training": 1.0}
        return {"source": "mnist", "noise": "pair", "rate": 0.2, "seed": seed, "methods": {
            "loss": {**row, "ap": ap_loss}, "dfaulo": {**row, "ap": ap_dfaulo},
            "dfaulo+review": {**row, "ap": 0.99, "recall@10%/ideal": 0.96}}}
    summary = summarize([res(0, 0.8, 0.9), res(1, 0.6, 0.95)])
    by = {e["method"]: e for e in summary}
    assert by["loss"]["ap"] == 0.7 and abs(by["loss"]["ap sd"] - 0.1) < 1e-12
    assert by["dfaulo"]["ap"] == 0.925 and by["dfaulo"]["seeds"] == 2
    table = markdown_summary(summary)
    assert "| pair 20% | dfaulo | **0.925 ± 0.025** |" in table      # best of the methods, not the loop
    assert "| pair 20% | dfaulo+review | 0.990 ± 0.000 | 0.900 | 0.960 |" in table
