"""DFauLo's meta-ranker: a logistic regression over standardized features.

Before any verdict it is trained on synthetic faults (label 1) against a random sample of the real
items (label 0). Once reviewers' verdicts contain both a fault and a clean item, it is refit on all
verdicts so far, with the initial ranker's logit as one more feature so that a handful of verdicts
adjusts the initial ranking instead of replacing it.
"""
from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler


class MetaRanker:
    """Scores ``(N,)`` in [0, 1] from features ``(N, F)``; higher = more likely a fault."""

    def __init__(self, *, seed: int = 0, c_initial: float = 1.0, c_online: float = 0.5):
        self.seed = seed
        self.c_initial = c_initial
        self.c_online = c_online
        self.scaler: StandardScaler | None = None
        self.initial: LogisticRegression | None = None
        self.online: LogisticRegression | None = None
        self.logit_scale = 1.0

    def fit_initial(self, real: np.ndarray, synthetic: np.ndarray, *, max_real: int = 5000) -> "MetaRanker":
        """Fit the scaler on ``real`` (N, F) and the initial ranker on synthetic faults ``(M, F)``
        against up to ``max_real`` random real items."""
        if real.ndim != 2 or synthetic.ndim != 2 or real.shape[1] != synthetic.shape[1]:
            raise ValueError(f"real and synthetic must be (N, F) with equal F, got {real.shape} and {synthetic.shape}")
        if len(synthetic) == 0 or len(real) == 0:
            raise ValueError("the initial ranker needs real items and synthetic faults")
        self.scaler = StandardScaler().fit(real)
        rng = np.random.default_rng(self.seed)
        neg = real[rng.choice(len(real), size=min(max_real, len(real)), replace=False)]
        xs = self.scaler.transform(np.concatenate([neg, synthetic]))
        ys = np.r_[np.zeros(len(neg)), np.ones(len(synthetic))]
        self.initial = LogisticRegression(C=self.c_initial, class_weight="balanced", max_iter=2000).fit(xs, ys)
        self.logit_scale = float(self.initial.decision_function(self._scaled(real)).std()) + 1e-6
        self.online = None
        return self

    def _scaled(self, feats: np.ndarray) -> np.ndarray:
        if self.scaler is None or self.initial is None:
            raise ValueError("the meta-ranker is not fitted yet")
        return np.clip(self.scaler.transform(feats), -20, 20)

    def _online_input(self, feats: np.ndarray) -> np.ndarray:
        z = self._scaled(feats)
        return np.concatenate([z, self.initial.decision_function(z)[:, None] / self.logit_scale], 1)

    def refit(self, feats: np.ndarray, is_fault: np.ndarray) -> bool:
        """Refit on verdicts: ``feats`` (K, F) of the reviewed items, ``is_fault`` (K,) bool.
        Returns False (and keeps the current ranker) while the verdicts hold only one class."""
        is_fault = np.asarray(is_fault, dtype=bool)
        if len(feats) != len(is_fault):
            raise ValueError(f"{len(feats)} feature rows but {len(is_fault)} verdicts")
        if is_fault.all() or not is_fault.any():
            return False
        # Both the features and the initial logit are standardized over *all* items (not over the
        # reviewed few), so the refit extrapolates sanely to the unreviewed rest.
        self.online = LogisticRegression(C=self.c_online, class_weight="balanced", max_iter=2000)
        self.online.fit(self._online_input(feats), is_fault.astype(int))
        return True

    def score(self, feats: np.ndarray) -> np.ndarray:
        """Probability of a fault ``(N,)`` in [0, 1]."""
        if self.online is None:
            return self.initial.predict_proba(self._scaled(feats))[:, 1]
        return self.online.predict_proba(self._online_input(feats))[:, 1]
