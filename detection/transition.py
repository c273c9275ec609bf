"""The noise transition and each item's posterior probability that its label is wrong.

Label noise has a structure: annotators write 7 for 1, 2 for 0, 1 and 3, or slip to any class at
random. The *transition* ``T[j, y]``, the probability that an item of true class ``j`` is given
label ``y``, describes it. It is estimated in the run from the model's *confident joint*
(Northcutt et al., "Confident learning", JAIR 2021, the estimate behind cleanlab): an item labeled
``y`` counts for true class ``j`` when the model's probability of ``j`` reaches ``j``'s threshold,
the mean probability the model gives class ``j`` on the items labeled ``j``.

With the model's probabilities ``p(j | x)`` taken as the item's true-class posterior, Bayes' rule
gives the probability that its given label ``y`` is wrong::

    P(fault | x, y) = sum_{j != y} p(j | x) T[j, y] / sum_j p(j | x) T[j, y]

Under random flips (``T`` flat off the diagonal) this ranks items like their loss; under a
systematic confusion it weighs the class the faults come from, where the loss and the margin
see only the label's own probability. No constant is chosen here: the thresholds are the
confident joint's, the counts carry a pseudo-count of ``PSEUDO_COUNT``, a fraction of one item,
only so that a class without confident items gets a defined (flat) row.
"""
from __future__ import annotations

import numpy as np

PSEUDO_COUNT = 1e-3


def _validate(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if probs.ndim != 2 or labels.shape != (len(probs),):
        raise ValueError(f"probs must be (N, C) and labels (N,), got {probs.shape} and {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= probs.shape[1]):
        raise ValueError(f"labels must lie in 0..{probs.shape[1] - 1}")
    return probs, labels


def confident_transition(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``(C, C)``, rows sum to 1: ``T[j, y]``, the estimated probability that an item of true class
    ``j`` carries label ``y``, from the confident joint of ``probs`` (N, C) and ``labels`` (N,)."""
    probs, labels = _validate(probs, labels)
    c = probs.shape[1]
    counts = np.bincount(labels, minlength=c)
    own = np.bincount(labels, weights=probs[np.arange(len(labels)), labels], minlength=c)
    # a class without items has no threshold: no item counts for it
    thresholds = np.where(counts > 0, own / np.maximum(counts, 1), np.inf)
    confident = probs >= thresholds[None, :]
    true_class = np.where(confident, probs, -1.0).argmax(1)
    counted = confident.any(1)
    joint = np.zeros((c, c))
    np.add.at(joint, (true_class[counted], labels[counted]), 1.0)
    joint += PSEUDO_COUNT
    return joint / joint.sum(1, keepdims=True)


def fault_posterior(probs: np.ndarray, labels: np.ndarray, transition: np.ndarray) -> np.ndarray:
    """``(N,)`` in [0, 1]: each item's probability that its label is wrong, given the model's
    ``probs`` (N, C) as its true-class posterior and the ``transition`` (C, C) of
    ``confident_transition``."""
    probs, labels = _validate(probs, labels)
    transition = np.asarray(transition, dtype=np.float64)
    if transition.shape != (probs.shape[1],) * 2:
        raise ValueError(f"transition must be ({probs.shape[1]}, {probs.shape[1]}), got {transition.shape}")
    joint = probs * transition[:, labels].T          # (N, C): p(j | x) T[j, y]
    total = joint.sum(1)
    own = joint[np.arange(len(labels)), labels]
    return np.where(total > 0, 1.0 - own / np.where(total > 0, total, 1.0), 0.0)
