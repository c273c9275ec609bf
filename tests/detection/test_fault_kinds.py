"""Fault kinds: an item seen by any one view ranks high, a view without a say adds nothing, the
log odds never falls further up a signal."""
import numpy as np
import pytest

from detection.fault_kinds import FaultKinds
from detection.metrics import ranking_report
from detection.mixture import TwoGroups, fit_two_groups
from detection.vote import views_vote


def _two_kinds(seed: int = 0, n: int = 6000):
    """Flips seen only by the output-level core, items from elsewhere seen only by the outlier
    view; the activation view sees nothing."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(3, size=n, p=[0.92, 0.05, 0.03])       # 0 clean, 1 flip, 2 from elsewhere
    core = rng.normal(size=n) + 3.5 * (kind == 1)
    outlier = rng.normal(size=n) + 6.0 * (kind == 2)
    activation = rng.normal(size=n)
    return core, activation, outlier, kind


def _pct(values):
    return (np.sort(values)[None, :] <= values[:, None]).mean(1)


def test_a_fault_seen_by_one_view_is_not_diluted_by_the_views_that_do_not_see_its_kind():
    core, activation, outlier, kind = _two_kinds()
    labels = np.zeros(len(core), dtype=np.int64)
    gates = np.array([[1.0], [1.0]])
    fault = kind > 0
    kinds = FaultKinds.fit(core, activation, outlier, gates, labels)
    assert kinds.core is not None and kinds.outlier is not None and kinds.activation is None
    ours = ranking_report(kinds.evidence(core, activation, outlier, gates, labels), fault)["ap"]
    averaged = ranking_report(views_vote(_pct(core), _pct(activation), _pct(outlier), labels, gates), fault)["ap"]
    each_alone = max(ranking_report(s, fault)["ap"] for s in (core, outlier))
    assert ours > each_alone + 0.2 and ours > averaged + 0.1
    for k in (1, 2):      # each kind ranked well on its own
        mine = (kind == 0) | (kind == k)
        assert ranking_report(kinds.evidence(core, activation, outlier, gates, labels)[mine], fault[mine])["ap"] > 0.9


def test_a_view_without_a_say_in_a_class_changes_nothing_there():
    core, activation, outlier, kind = _two_kinds(seed=1)
    labels = np.zeros(len(core), dtype=np.int64)
    no_say = np.array([[0.0], [0.0]])
    kinds = FaultKinds.fit(core, activation, outlier, no_say, labels)
    evidence = kinds.evidence(core, activation, outlier, no_say, labels)
    assert np.array_equal(np.argsort(evidence, kind="stable"), np.argsort(core, kind="stable"))


def test_the_log_odds_never_falls_further_up_when_the_upper_group_is_narrower():
    narrow_upper = TwoGroups(means=(0.0, 4.0), sds=(2.0, 0.5), weights=(0.9, 0.1))
    wide_upper = TwoGroups(means=(0.0, 4.0), sds=(0.5, 2.0), weights=(0.9, 0.1))
    values = np.linspace(-20, 40, 2001)
    for groups in (narrow_upper, wide_upper):
        assert np.all(np.diff(groups.log_odds(values)) >= 0)
    assert narrow_upper.log_odds(np.array([4.0]))[0] > 0 > narrow_upper.log_odds(np.array([0.0]))[0]


def test_the_fit_keeps_the_groups_weights():
    rng = np.random.default_rng(2)
    groups = fit_two_groups(np.r_[rng.normal(size=2700), rng.normal(5.0, 1.0, size=300)])
    assert groups.weights[1] == pytest.approx(0.1, abs=0.02)
    assert TwoGroups(means=(0.0, 1.0), sds=(1.0, 1.0)).weights == (0.5, 0.5)   # fits saved before


def test_mismatched_shapes_are_refused_with_a_message():
    core, activation, outlier, _ = _two_kinds(n=500)
    labels = np.zeros(500, dtype=np.int64)
    kinds = FaultKinds.fit(core, activation, outlier, np.ones((2, 1)), labels)
    with pytest.raises(ValueError, match="must be"):
        kinds.evidence(core[:10], activation, outlier, np.ones((2, 1)), labels)
