import numpy as np
import pytest

from detection.metrics import ranking_report
from detection.ranker import MetaRanker


def _items(vote_quality: float, seed: int = 0, n: int = 2000):
    """Inputs (n, 4): column 0 separates faults cleanly, columns 1-2 are noise, the last column
    (the vote) is the fault flag blurred by noise of size ``1 - vote_quality``."""
    rng = np.random.default_rng(seed)
    fault = rng.random(n) < 0.1
    signal = fault * 3.0 + rng.normal(size=n)
    vote = np.clip(vote_quality * fault + (1 - vote_quality) * rng.random(n) * 1.2, 0, 1)
    return np.c_[signal, rng.normal(size=(n, 2)), vote], fault


def _review_top(meta, inputs, fault, k=300):
    top = np.argsort(-meta.score(inputs))[:k]
    return top, meta.refit(inputs[top], fault[top])


def test_refit_is_adopted_when_the_verdicts_show_a_better_rule():
    inputs, fault = _items(vote_quality=0.3)
    meta = MetaRanker(seed=0).fit_vote(inputs)
    before = ranking_report(meta.score(inputs), fault)["ap"]
    top, changed = _review_top(meta, inputs, fault)
    assert changed and meta.validation["accepted"] and meta.online
    rest = np.setdiff1d(np.arange(len(fault)), top)
    assert ranking_report(meta.score(inputs)[rest], fault[rest])["ap"] > before


def test_refit_is_refused_when_it_does_not_beat_the_initial_ranking():
    inputs, fault = _items(vote_quality=0.9)
    inputs[:, 0] = np.random.default_rng(5).normal(size=len(fault))   # no feature knows more than the vote
    meta = MetaRanker(seed=0).fit_vote(inputs)
    before = meta.score(inputs)
    _review_top(meta, inputs, fault, k=400)
    assert meta.validation and not meta.validation["accepted"] and not meta.online
    assert np.array_equal(meta.score(inputs), before)


def test_refit_waits_for_ten_verdicts_of_each_kind():
    inputs, fault = _items(vote_quality=0.5)
    meta = MetaRanker(seed=0).fit_vote(inputs)
    faults, clean = np.flatnonzero(fault)[:30], np.flatnonzero(~fault)[:9]
    idx = np.r_[faults, clean]
    assert meta.refit(inputs[idx], fault[idx]) is False and meta.validation == {}
    with pytest.raises(ValueError, match="verdicts"):
        meta.refit(inputs[:3], fault[:2])
