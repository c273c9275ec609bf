"""DFauLo's meta-ranker: a logistic regression over standardized per-item inputs.

Inputs (N, F): an item's view-level features (flags, losses, checkpoint losses, TracIn, outlier and
activation scores, margin) and, as the last column, the *views vote*: the mean percentile rank of
the item's output-level (loss) and hidden-level (activation) view scores.

Before any verdict, two initial rankers are available:
- "vote" (default): the vote itself. The ranker's prior training set is the vote's own top
  ``top`` fraction (pseudo-faults) against a sample of its lower 60% (pseudo-clean).
- "synthetic" (the paper's): a logistic regression of synthetic faults (label 1) against a random
  sample of real items (label 0); that set is also the prior training set.
Once reviewers' verdicts hold both a fault and a clean item, the regression is refit on all
verdicts so far together with the prior set, down-weighted to ``prior_weight`` verdicts in total,
so that the first verdicts (nearly all faults, from the top of the ranking) adjust the ranking
instead of overturning it.
"""
from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

INITIAL_RANKERS = ("vote", "synthetic")


class MetaRanker:
    """Scores ``(N,)`` in [0, 1] from inputs ``(N, F)`` (last column = views vote in [0, 1])."""

    def __init__(self, *, seed: int = 0, c: float = 1.0, prior_weight: float = 100.0, top: float = 0.03):
        self.seed = seed
        self.c = c
        self.prior_weight = prior_weight
        self.top = top
        self.initial = "vote"
        self.scaler: StandardScaler | None = None
        self.model: LogisticRegression | None = None
        self.prior_x: np.ndarray | None = None
        self.prior_y: np.ndarray | None = None
        self.online = False

    def _check(self, real: np.ndarray) -> None:
        if real.ndim != 2 or len(real) < 4:
            raise ValueError(f"inputs must be (N, F) with N >= 4, got {real.shape}")

    def fit_vote(self, real: np.ndarray, *, max_real: int = 5000) -> "MetaRanker":
        """Initial ranking = the vote column; prior set = pseudo-labels from the vote."""
        self._check(real)
        self.initial = "vote"
        self.scaler = StandardScaler().fit(real)
        rng = np.random.default_rng(self.seed)
        n = len(real)
        order = np.argsort(-real[:, -1], kind="stable")
        k = max(2, int(round(self.top * n)))
        lower = order[int(0.4 * n):]
        neg = rng.choice(lower, size=min(len(lower), max_real), replace=False)
        self.prior_x = self._scaled(real[np.r_[order[:k], neg]])
        self.prior_y = np.r_[np.ones(k), np.zeros(len(neg))].astype(int)
        self.model, self.online = None, False
        return self

    def fit_synthetic(self, real: np.ndarray, synthetic: np.ndarray, *, max_real: int = 5000) -> "MetaRanker":
        """The paper's initial ranker: synthetic faults ``(M, F)`` against up to ``max_real``
        random real items ``(N, F)``."""
        self._check(real)
        if synthetic.ndim != 2 or synthetic.shape[1] != real.shape[1] or len(synthetic) == 0:
            raise ValueError(f"synthetic must be (M, {real.shape[1]}) with M > 0, got {synthetic.shape}")
        self.initial = "synthetic"
        self.scaler = StandardScaler().fit(real)
        rng = np.random.default_rng(self.seed)
        neg = real[rng.choice(len(real), size=min(max_real, len(real)), replace=False)]
        self.prior_x = self._scaled(np.concatenate([neg, synthetic]))
        self.prior_y = np.r_[np.zeros(len(neg)), np.ones(len(synthetic))].astype(int)
        self.model = LogisticRegression(C=self.c, max_iter=3000).fit(
            self.prior_x, self.prior_y, sample_weight=_balanced_weights(self.prior_y))
        self.online = False
        return self

    def _scaled(self, x: np.ndarray) -> np.ndarray:
        if self.scaler is None:
            raise ValueError("the meta-ranker is not fitted yet")
        return np.clip(self.scaler.transform(x), -20, 20)

    def refit(self, inputs: np.ndarray, is_fault: np.ndarray) -> bool:
        """Refit on verdicts: ``inputs`` (K, F) of the reviewed items, ``is_fault`` (K,) bool.
        Returns False (and keeps the current ranker) while the verdicts hold only one class."""
        is_fault = np.asarray(is_fault, dtype=bool)
        if len(inputs) != len(is_fault):
            raise ValueError(f"{len(inputs)} input rows but {len(is_fault)} verdicts")
        if is_fault.all() or not is_fault.any():
            return False
        prior_w = _balanced_weights(self.prior_y) * (self.prior_weight / len(self.prior_y))
        x = np.concatenate([self.prior_x, self._scaled(inputs)])
        y = np.r_[self.prior_y, is_fault.astype(int)]
        w = np.r_[prior_w, np.ones(len(is_fault))]
        self.model = LogisticRegression(C=self.c, max_iter=3000).fit(x, y, sample_weight=w)
        self.online = True
        return True

    def score(self, inputs: np.ndarray) -> np.ndarray:
        """Probability-like fault score ``(N,)`` in [0, 1]."""
        if self.scaler is None:
            raise ValueError("the meta-ranker is not fitted yet")
        if self.model is None:          # "vote" before any usable verdict
            return np.clip(inputs[:, -1].astype(np.float64), 0.0, 1.0)
        return self.model.predict_proba(self._scaled(inputs))[:, 1]


def _balanced_weights(y: np.ndarray) -> np.ndarray:
    """Weights that give each class half of the total weight, with mean weight 1."""
    pos = max(1, int(y.sum()))
    neg = max(1, int((y == 0).sum()))
    return np.where(y == 1, len(y) / (2 * pos), len(y) / (2 * neg))
