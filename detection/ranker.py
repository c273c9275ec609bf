"""DFauLo's meta-ranker: a logistic regression over standardized per-item inputs.

Inputs (N, F): an item's view-level features (flags, losses, checkpoint losses, TracIn, outlier and
activation scores, margin) and, as the last column, the *views vote*: the mean percentile rank of
the item's output-level (loss) and hidden-level (activation) view scores.

Before any verdict, two kinds of initial ranker are available:
- "evidence" (default: the last input column is then the mean of the fault kinds' and the
  mixture evidence's percentiles, ``signals.ranker_inputs``), "vote" and "loss-vote" (``signals.VOTE_CORES``:
  the vote on the ensemble loss, the margin and the noise posterior, or on the ensemble loss
  alone): that last column
  itself. The ranker's prior training set is its own top ``top`` fraction (pseudo-faults) against
  a sample of its lower 60% (pseudo-clean).
- "synthetic" (the paper's): a logistic regression of synthetic faults (label 1) against a random
  sample of real items (label 0); that set is also the prior training set.
Once reviewers' verdicts hold at least ``min_each`` (10) faults and clean items, the regression is refit
on all verdicts so far together with the prior set, down-weighted to ``prior_weight`` verdicts in
total, so that the first verdicts (nearly all faults, from the top of the ranking) adjust the
ranking instead of overturning it. The refit replaces the initial ranking only if it ranks the
verdicts better: in a k-fold cross-validation over the verdicts, its out-of-fold AUC must beat the
initial ranker's AUC on the same verdicts by more than ``min_gain``. Verdicts come from the top of
the ranking, where a regression can learn a rule that separates those items and ranks the rest
worse than the initial ranking did (measured: random label flips, scripts/benchmark.py).
"""
from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

INITIAL_RANKERS = ("evidence", "vote", "loss-vote", "synthetic")


class MetaRanker:
    """Scores ``(N,)`` in [0, 1] from inputs ``(N, F)`` (last column = views vote in [0, 1])."""

    def __init__(self, *, seed: int = 0, c: float = 1.0, prior_weight: float = 100.0, top: float = 0.03,
                 min_gain: float = 0.02, folds: int = 5, min_each: int = 10):
        self.seed = seed
        self.c = c
        self.prior_weight = prior_weight
        self.top = top
        self.min_gain = min_gain
        self.folds = folds
        self.min_each = min_each
        self.initial = "vote"
        self.scaler: StandardScaler | None = None
        self.initial_model: LogisticRegression | None = None   # "synthetic" only
        self.model: LogisticRegression | None = None
        self.validation: dict = {}      # the last refit's cross-validation: AUCs, gain, accepted
        self.prior_x: np.ndarray | None = None
        self.prior_y: np.ndarray | None = None

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
        self.model = self.initial_model = None
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
        self.model = self.initial_model = LogisticRegression(C=self.c, max_iter=3000).fit(
            self.prior_x, self.prior_y, sample_weight=_balanced_weights(self.prior_y))
        return self

    @property
    def online(self) -> bool:
        """Whether a refit on verdicts ranks now (instead of the initial ranker)."""
        return self.model is not self.initial_model

    def _scaled(self, x: np.ndarray) -> np.ndarray:
        if self.scaler is None:
            raise ValueError("the meta-ranker is not fitted yet")
        return np.clip(self.scaler.transform(x), -20, 20)

    def _fit(self, x: np.ndarray, y: np.ndarray) -> LogisticRegression:
        """Regression on the prior set plus scaled verdict rows ``x`` (K, F) with labels ``y``."""
        prior_w = _balanced_weights(self.prior_y) * (self.prior_weight / len(self.prior_y))
        return LogisticRegression(C=self.c, max_iter=3000).fit(
            np.concatenate([self.prior_x, x]), np.r_[self.prior_y, y],
            sample_weight=np.r_[prior_w, np.ones(len(y))])

    def _initial_scores(self, inputs: np.ndarray) -> np.ndarray:
        if self.initial_model is None:
            return inputs[:, -1].astype(np.float64)
        return self.initial_model.decision_function(self._scaled(inputs))

    def refit(self, inputs: np.ndarray, is_fault: np.ndarray) -> bool:
        """Refit on verdicts: ``inputs`` (K, F) of the reviewed items, ``is_fault`` (K,) bool.
        Returns False (and keeps the current ranker) while the verdicts hold fewer than
        ``min_each`` faults or clean items (an AUC over three clean items says little);
        otherwise True, with the refit in use only if it passed the cross-validation
        (``validation`` says how it went)."""
        is_fault = np.asarray(is_fault, dtype=bool)
        if len(inputs) != len(is_fault):
            raise ValueError(f"{len(inputs)} input rows but {len(is_fault)} verdicts")
        fewer = min(int(is_fault.sum()), int((~is_fault).sum()))   # verdicts of the rarer kind
        k = min(self.folds, fewer)
        if fewer < self.min_each or k < 2:
            return False
        x = self._scaled(inputs)
        y = is_fault.astype(int)
        held_out = np.zeros(len(y))
        for train, test in StratifiedKFold(k, shuffle=True, random_state=self.seed).split(x, y):
            held_out[test] = self._fit(x[train], y[train]).decision_function(x[test])
        refit_auc = float(roc_auc_score(y, held_out))
        initial_auc = float(roc_auc_score(y, self._initial_scores(inputs)))
        accepted = refit_auc - initial_auc > self.min_gain
        self.validation = {"verdicts": len(y), "folds": k, "refit_auc": round(refit_auc, 4),
                           "initial_auc": round(initial_auc, 4), "accepted": bool(accepted)}
        self.model = self._fit(x, y) if accepted else self.initial_model
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
