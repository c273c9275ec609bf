"""Ranking quality of suspiciousness scores against known faults.

All functions take ``scores (N,)`` (higher = inspected first) and ``is_fault (N,)`` booleans.
Ties are broken by item order (stable sort), the same way in every function.
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score


def _validate(scores, is_fault) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64)
    is_fault = np.asarray(is_fault).astype(bool)
    if scores.ndim != 1 or scores.shape != is_fault.shape:
        raise ValueError(f"scores and is_fault must be 1-D of equal length, got {scores.shape} and {is_fault.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite")
    if is_fault.sum() == 0:
        raise ValueError("is_fault has no fault: ranking quality is undefined")
    return scores, is_fault


def inspection_order(scores) -> np.ndarray:
    """Indices from most to least suspicious (stable for ties)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def recall_curve(scores, is_fault) -> np.ndarray:
    """Fraction of faults found after inspecting 1, 2, ..., N items: ``(N,)``."""
    scores, is_fault = _validate(scores, is_fault)
    return np.cumsum(is_fault[inspection_order(scores)]) / is_fault.sum()


def inspected_count(n: int, fraction: float) -> int:
    """How many of ``n`` items "the first ``fraction``" inspects (at least one)."""
    return max(1, int(round(fraction * n)))


def recall_at(scores, is_fault, *, fraction: float) -> float:
    """Fraction of faults among the first ``fraction`` of items inspected."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    curve = recall_curve(scores, is_fault)
    return float(curve[inspected_count(len(curve), fraction) - 1])


def rauc(scores, is_fault, *, fraction: float = 1.0) -> float:
    """Area under the recall curve over the first ``fraction`` inspected, relative to the ideal
    ranking's area (DFauLo's RAUC). 1.0 = every fault before any clean item."""
    scores, is_fault = _validate(scores, is_fault)
    curve = recall_curve(scores, is_fault)
    k = inspected_count(len(curve), fraction)
    ideal = np.minimum(np.arange(1, k + 1), is_fault.sum()) / is_fault.sum()
    return float(curve[:k].sum() / ideal.sum())


def r_precision(scores, is_fault) -> float:
    """Precision among the first R items, R = number of faults."""
    scores, is_fault = _validate(scores, is_fault)
    r = int(is_fault.sum())
    return float(is_fault[inspection_order(scores)[:r]].mean())


def apfd(scores, is_fault) -> float:
    """Average percentage of faults detected: 1 - mean(position of each fault)/N + 1/(2N)."""
    scores, is_fault = _validate(scores, is_fault)
    n = len(scores)
    positions = np.flatnonzero(is_fault[inspection_order(scores)]) + 1
    return float(1 - positions.sum() / (len(positions) * n) + 1 / (2 * n))


def ranking_report(scores, is_fault) -> dict[str, float]:
    """Every metric at once: ap, auroc, r_precision, recall@10%, recall@20%, rauc@10%, apfd."""
    scores, is_fault = _validate(scores, is_fault)
    both = 0 < is_fault.sum() < len(is_fault)
    return {
        "ap": float(average_precision_score(is_fault, scores)),
        "auroc": float(roc_auc_score(is_fault, scores)) if both else float("nan"),
        "r_precision": r_precision(scores, is_fault),
        "recall@10%": recall_at(scores, is_fault, fraction=0.1),
        "recall@20%": recall_at(scores, is_fault, fraction=0.2),
        "rauc@10%": rauc(scores, is_fault, fraction=0.1),
        "apfd": apfd(scores, is_fault),
    }
