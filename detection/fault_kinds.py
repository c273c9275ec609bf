"""Fault kinds: an item is a fault when it is a fault of *any* kind the views see.

DFauLo's three views each see a different kind of fault: the output-level signals (the ``VOTE_CORES``
percentile: ensemble loss, margin, noise posterior) see label flips, the outlier view sees items
from elsewhere, the activation view sees a confusion that forms a cluster of its own. The views
vote averages their percentiles, so an item that only one view sees (a photo crop with a
plausible label, a flip among ordinary digits) is diluted by the views that do not see its kind:
on the spent test draw 72-95, a MNIST scenario with flips inside three classes plus smooth-noise
images ranked its flips at AP 0.75 where the noise posterior alone gave 0.97.

Here each view gives the probability that an item belongs to its upper group: the posterior of a
two-component Gaussian mixture over the training items' signal (``mixture.fit_two_groups``, 0
where the Bayesian information criterion prefers one component), times the view's say in the
item's class (``vote.view_gates``; the output-level signals always have a say). The kinds are
taken as independent, so the probability of a fault of any kind is the noisy-OR
``1 - prod_k (1 - g_k p_k)``; items are ranked by ``-log prod_k (1 - g_k p_k)``, which keeps the
order among items whose probability rounds to 1. No constant is chosen here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .mixture import TwoGroups, fit_two_groups


def _minus_log_not(log_odds: np.ndarray, say: np.ndarray | float) -> np.ndarray:
    """``(N,)``: ``-log(1 - say * sigmoid(log_odds))``, computed without overflow; 0 where
    ``say`` is 0, ``log(1 + exp(log_odds))`` where it is 1."""
    say = np.broadcast_to(np.asarray(say, dtype=np.float64), log_odds.shape)
    with np.errstate(divide="ignore"):
        log_rest = np.where(say < 1.0, np.log(np.clip(1.0 - say, 0.0, 1.0)), -np.inf)
    return np.logaddexp(0.0, log_odds) - np.logaddexp(0.0, log_odds + log_rest)


@dataclass
class FaultKinds:
    """Fitted on the training items; scores any item.

    ``core``, ``activation``, ``outlier``: the two-group fit of the output-level percentile, the
    activation view score and the log outlier view score, or None where one group describes the
    signal better. ``reference``: the training items' evidence, sorted (the scale of
    ``percentile``)."""

    core: TwoGroups | None
    activation: TwoGroups | None
    outlier: TwoGroups | None
    reference: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    @classmethod
    def fit(cls, core: np.ndarray, activation: np.ndarray, outlier: np.ndarray, gates: np.ndarray,
            labels: np.ndarray, *, seed: int = 0) -> "FaultKinds":
        """Each argument ``(N,)`` over the training items (higher = more suspicious), ``gates``
        ``(2, C)`` the activation and outlier views' say per class (``vote.view_gates``)."""
        fits = [fit_two_groups(s, seed=seed) for s in (core, activation, outlier)]
        out = cls(*fits)
        out.reference = np.sort(out.evidence(core, activation, outlier, gates, labels))
        return out

    def evidence(self, core: np.ndarray, activation: np.ndarray, outlier: np.ndarray, gates: np.ndarray,
                 labels: np.ndarray) -> np.ndarray:
        """``(N,)``: ``-log`` of the probability that the item is a fault of no kind (higher = more
        suspicious), plus the output-level percentile ``core`` times 1e-9, which orders items the
        fits cannot tell apart (a signal with one group, or gates at 0) by the labels' evidence."""
        core = np.asarray(core, dtype=np.float64)
        labels = np.asarray(labels, dtype=np.int64)
        shapes = {np.shape(a) for a in (core, activation, outlier, labels)}
        if len(shapes) != 1 or core.ndim != 1 or np.ndim(gates) != 2 or len(gates) != 2:
            raise ValueError(f"core, activation, outlier and labels must be (N,) and gates (2, C), got "
                             f"{sorted(shapes)} and {np.shape(gates)}")
        total = 1e-9 * core
        for fit, values, say in ((self.core, core, 1.0), (self.activation, activation, gates[0][labels]),
                                 (self.outlier, outlier, gates[1][labels])):
            if fit is not None:
                total = total + _minus_log_not(fit.log_odds(values), say)
        return total

    def percentile(self, core: np.ndarray, activation: np.ndarray, outlier: np.ndarray, gates: np.ndarray,
                   labels: np.ndarray) -> np.ndarray:
        """``(N,)`` in [0, 1]: each item's evidence as the fraction of training items at or below it."""
        ev = self.evidence(core, activation, outlier, gates, labels)
        return np.searchsorted(self.reference, ev, side="right") / max(1, len(self.reference))
