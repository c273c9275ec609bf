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


def view_gates(predicted: np.ndarray, labels: np.ndarray, log_outlier: np.ndarray, *,
               num_classes: int) -> np.ndarray:
    """``(2, C)`` in [0, 1]: the activation view's and the outlier view's say in each class.

    ``predicted`` (N,) the model's classes, ``labels`` (N,) the given ones, ``log_outlier`` (N,)
    the log outlier-view score of each item against its own class."""
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
