"""Mixture evidence: how strongly each signal says "this item is a fault", measured in the run.

Each signal (the ensemble loss, the final margin, the checkpoints' loss, TracIn, the activation
view, the outlier view; ``signals.mixture_signals``) gets a one- and a two-component Gaussian
mixture over the training items. Where the two components do not describe the signal better than
one (Bayesian information criterion), the signal shows no separate group of items and says
nothing: its evidence is 0. Otherwise an item's evidence from that signal is its log-likelihood
ratio, the upper component (the faults') against the lower one (the clean items'). An item's
mixture evidence is the sum over signals (naive Bayes: the signals taken as independent given
the item's kind).

The activation and outlier views see kinds of fault the losses do not, but their upper group is
not always the faults: when one class receives many wrong labels, the activation view's small
cluster in that class can be its *correct* items. A view is kept only if its evidence agrees in
sign with the output-level signals' (Spearman correlation above 0 over the training items), or
when those signals say nothing at all.

No constant here was chosen on a benchmark: the criterion (BIC), the sign check and the sum are
the whole method. Measured on the development draw of scripts/scenarios.py (README, "How the
ranking works"); the default ranking averages its percentile with the views vote's.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: evidence per signal is clipped to this many nats, so that one signal far in a tail cannot
#: outvote all others by an arbitrary margin (a Gaussian's tail is not a fault's)
MAX_NATS = 30.0


@dataclass(frozen=True)
class TwoGroups:
    """A signal's two-component fit: ``means``, ``sds`` and ``weights`` (2,), index 1 the upper
    group. Fits saved before the weights were kept have equal weights."""

    means: tuple[float, float]
    sds: tuple[float, float]
    weights: tuple[float, float] = (0.5, 0.5)

    def _density_ratio(self, v: np.ndarray) -> np.ndarray:
        """Log density of ``v`` (float64) under the upper group minus under the lower one."""
        lo, hi = ((v - m) / s for m, s in zip(self.means, self.sds))
        return 0.5 * (lo ** 2 - hi ** 2) + np.log(self.sds[0] / self.sds[1])

    def log_ratio(self, values: np.ndarray) -> np.ndarray:
        """``(N,)``: log density of ``values`` under the upper group minus under the lower one."""
        return np.clip(self._density_ratio(np.asarray(values, dtype=np.float64)), -MAX_NATS, MAX_NATS)

    def log_odds(self, values: np.ndarray) -> np.ndarray:
        """``(N,)``: the log odds that ``values`` come from the upper group (weights included),
        made non-decreasing in the value: where the groups' spreads differ, the log odds is a
        parabola, and beyond its vertex it is held at the vertex's value (a value further up is
        no less a member of the upper group than one below it)."""
        v = np.asarray(values, dtype=np.float64)
        (m0, m1), (s0, s1) = self.means, self.sds
        curvature = 0.5 * (1.0 / s0 ** 2 - 1.0 / s1 ** 2)
        if curvature != 0.0:
            vertex = -(m1 / s1 ** 2 - m0 / s0 ** 2) / (2.0 * curvature)
            v = np.minimum(v, vertex) if curvature < 0 else np.maximum(v, vertex)
        return self._density_ratio(v) + np.log(self.weights[1] / self.weights[0])


def fit_two_groups(values: np.ndarray, *, seed: int = 0) -> TwoGroups | None:
    """The two-component fit of ``values`` (N,), or None where one component has the lower BIC."""
    from sklearn.mixture import GaussianMixture

    v = np.asarray(values, dtype=np.float64).reshape(-1, 1)
    if len(v) < 10 or not np.isfinite(v).all() or np.ptp(v) == 0:
        return None
    one = GaussianMixture(1).fit(v)
    two = GaussianMixture(2, random_state=seed, n_init=2).fit(v)
    if two.bic(v) >= one.bic(v):
        return None
    order = np.argsort(two.means_[:, 0])
    means = two.means_[order, 0]
    sds = np.sqrt(two.covariances_.reshape(-1)[order])
    weights = two.weights_[order]
    return TwoGroups(means=(float(means[0]), float(means[1])), sds=(float(sds[0]), float(sds[1])),
                     weights=(float(weights[0]), float(weights[1])))


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b)[0])


@dataclass
class MixtureEvidence:
    """Fitted on the training items' signals; scores any item's signals.

    ``names`` the signals in order; the first ``core`` are output-level (always counted), the rest
    are views, counted where ``kept``. ``groups`` one ``TwoGroups`` or None per signal.
    ``reference`` the training items' evidence, sorted (the scale of ``percentile``)."""

    names: tuple[str, ...]
    core: int
    groups: list[TwoGroups | None]
    kept: tuple[bool, ...]
    reference: np.ndarray = field(repr=False)

    @classmethod
    def fit(cls, signals: np.ndarray, *, names: tuple[str, ...], core: int, seed: int = 0) -> "MixtureEvidence":
        """``signals`` (K, N): K named signals of the N training items, higher = more suspicious."""
        signals = np.asarray(signals, dtype=np.float64)
        if signals.ndim != 2 or signals.shape[0] != len(names) or not 0 < core <= len(names):
            raise ValueError(f"signals must be ({len(names)}, N) with 0 < core <= {len(names)}, got "
                             f"{signals.shape} and core={core}")
        groups = [fit_two_groups(s, seed=seed) for s in signals]
        ratios = [g.log_ratio(s) if g is not None else np.zeros(signals.shape[1]) for g, s in zip(groups, signals)]
        core_evidence = np.sum(ratios[:core], axis=0)
        said_nothing = np.ptp(core_evidence) == 0
        kept = tuple([True] * core + [said_nothing or _spearman(r, core_evidence) > 0 for r in ratios[core:]])
        out = cls(names=tuple(names), core=core, groups=groups, kept=kept, reference=np.zeros(0))
        out.reference = np.sort(out.evidence(signals))
        return out

    def evidence(self, signals: np.ndarray) -> np.ndarray:
        """``(N,)``: the summed log-likelihood ratios of the kept signals ``(K, N)``."""
        signals = np.asarray(signals, dtype=np.float64)
        if signals.ndim != 2 or signals.shape[0] != len(self.names):
            raise ValueError(f"signals must be ({len(self.names)}, N), got {signals.shape}")
        total = np.zeros(signals.shape[1])
        for g, keep, s in zip(self.groups, self.kept, signals):
            if g is not None and keep:
                total += g.log_ratio(s)
        return total

    def percentile(self, signals: np.ndarray) -> np.ndarray:
        """``(N,)`` in [0, 1]: each item's evidence as a fraction of the training items' below it."""
        return np.searchsorted(self.reference, self.evidence(signals), side="right") / max(1, len(self.reference))

    def summary(self) -> dict:
        """Which signals carry evidence in this run (for logs and the benchmark)."""
        return {n: "one group: no evidence" if g is None else "two groups" if k else
                "two groups, dropped: disagrees with the output-level signals"
                for n, g, k in zip(self.names, self.groups, self.kept)}
