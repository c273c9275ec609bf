"""The views vote: DFauLo's ranking before any verdict, and which views get a say in each class.

The loss (output-level view) always votes. The other two views vote in a class only where that
class shows the kind of fault they see; elsewhere they would only add their false alarms:

- hidden level (activation view): when the class's items that the model assigns to another class
  mostly go to *one* other class (a systematic confusion, e.g. annotators writing 7 for 1). Its
  wrong items then form a cluster of their own that the KMeans split finds, and the model has
  partly learned them, so the loss alone ranks them low. Random flips spread over all classes and
  the loss already ranks them near perfectly; there the activation view only adds unusual clean
  items.
- input level (outlier view): when the class holds items far outside its normal pixel spread
  (robust z-score above 4 of the log outlier score): images from elsewhere. Label flips are
  still images of some class and almost never pass that bar.

Measured with the bundled MNIST sample and sklearn's digits (see README, "How the ranking works"):
the gates switch the views on for pair noise and photo crops and off for random flips.

The activation view's say comes in two forms. First built: the concentration through a ramp
whose ends were chosen on the project's benchmark sets (``CONFUSION_RAMP``). Now the default
(``activation_evidence``): concentration times how well the view's score separates the class's
misassigned items from the rest, measured in the run, with no threshold. On the development draw
of scripts/scenarios.py the ramp shut the view on Fashion-MNIST's systematic confusions, where it
is the best signal there is.
"""
from __future__ import annotations

import numpy as np

#: a class's gate is 0 below the first value and 1 above the second, linear between
CONFUSION_RAMP = (1 / 3, 5 / 9)      # rescaled concentration; raw share 0.4 .. 0.6 with 10 classes
TAIL_RAMP = (0.005, 0.02)            # share of the class's items beyond the robust z bar
TAIL_Z = 4.0
MIN_CONFUSED = 10                    # fewer misassigned items than this: no evidence of structure


def ramp(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """0 at or below ``low``, 1 at or above ``high``, linear between."""
    return np.clip((np.asarray(values, dtype=np.float64) - low) / (high - low), 0.0, 1.0)


def confusion_concentration(predicted: np.ndarray, labels: np.ndarray, *, num_classes: int,
                            min_count: int = MIN_CONFUSED) -> np.ndarray:
    """Per class ``(C,)``: of the items labeled c that the model assigns to another class, the
    largest share going to one class, rescaled so that an even spread over the other C - 1
    classes gives 0 and a single target gives 1. Classes with fewer than ``min_count`` such
    items get 0. With two classes every confusion has one target: 1 wherever there are enough."""
    out = np.zeros(num_classes)
    chance = 1.0 / max(1, num_classes - 1)
    for c in range(num_classes):
        other = predicted[(labels == c) & (predicted != c)]
        if len(other) < min_count:
            continue
        share = np.bincount(other, minlength=num_classes).max() / len(other)
        out[c] = 1.0 if num_classes == 2 else (share - chance) / (1.0 - chance)
    return out


def robust_z(scores: np.ndarray, labels: np.ndarray, *, num_classes: int) -> np.ndarray:
    """``(N,)``: each item's score as a robust z-score within its class (median, 1.4826 MAD)."""
    z = np.zeros(len(scores))
    for c in range(num_classes):
        m = labels == c
        if m.sum() < 3:
            continue
        s = scores[m]
        med = np.median(s)
        mad = 1.4826 * np.median(np.abs(s - med))
        z[m] = (s - med) / max(mad, 1e-9)
    return z


def tail_fraction(scores: np.ndarray, labels: np.ndarray, *, num_classes: int, z: float = TAIL_Z) -> np.ndarray:
    """Per class ``(C,)``: share of its items whose robust z-score exceeds ``z``."""
    far = robust_z(scores, labels, num_classes=num_classes) > z
    counts = np.bincount(labels, minlength=num_classes)
    return np.bincount(labels, weights=far, minlength=num_classes) / np.maximum(counts, 1)


def activation_evidence(predicted: np.ndarray, labels: np.ndarray, activation: np.ndarray, *,
                        num_classes: int, min_count: int = MIN_CONFUSED) -> np.ndarray:
    """Per class ``(C,)`` in [0, 1]: how strongly the class's data say that its misassigned items
    form a cluster of their own, the kind of fault the activation view sees. The product of the
    class's ``confusion_concentration`` (do they go to one other class?) and the Gini coefficient
    ``2 AUC - 1`` (0 when negative) of the activation score ``activation`` (N,) at telling the
    class's items the model assigns elsewhere from those it keeps (does the view single them
    out?). No threshold: 0 where either says nothing, 1 where both are certain. Classes with
    fewer than ``min_count`` items on either side get 0."""
    from sklearn.metrics import roc_auc_score

    conc = confusion_concentration(predicted, labels, num_classes=num_classes, min_count=min_count)
    out = np.zeros(num_classes)
    for c in np.flatnonzero(conc > 0):
        mine = labels == c
        elsewhere = predicted[mine] != c
        if min(elsewhere.sum(), (~elsewhere).sum()) < min_count:
            continue
        out[c] = conc[c] * max(0.0, 2.0 * roc_auc_score(elsewhere, activation[mine]) - 1.0)
    return out


ACTIVATION_GATES = ("evidence", "ramp")


def view_gates(predicted: np.ndarray, labels: np.ndarray, log_outlier: np.ndarray, *,
               num_classes: int, activation: np.ndarray | None = None) -> np.ndarray:
    """``(2, C)`` in [0, 1]: the activation view's and the outlier view's say in each class.

    ``predicted`` (N,) the model's classes, ``labels`` (N,) the given ones, ``log_outlier`` (N,)
    the log outlier-view score of each item against its own class. With ``activation`` (N,), the
    activation view score of each item against its own class, the activation view's say is
    ``activation_evidence``; without, the concentration through ``CONFUSION_RAMP`` (the vote as
    first built)."""
    if activation is not None:
        act = activation_evidence(predicted, labels, activation, num_classes=num_classes)
    else:
        act = ramp(confusion_concentration(predicted, labels, num_classes=num_classes), *CONFUSION_RAMP)
    out = ramp(tail_fraction(log_outlier, labels, num_classes=num_classes), *TAIL_RAMP)
    return np.stack([act, out])


def views_vote(loss_pct: np.ndarray, act_pct: np.ndarray, outlier_pct: np.ndarray, labels: np.ndarray,
               gates: np.ndarray) -> np.ndarray:
    """``(N,)`` in [0, 1]: the loss percentile averaged with the activation and outlier
    percentiles, each weighted by its gate ``(2, C)`` for the item's label."""
    a = gates[0][labels]
    o = gates[1][labels]
    return (loss_pct + a * act_pct + o * outlier_pct) / (1.0 + a + o)
