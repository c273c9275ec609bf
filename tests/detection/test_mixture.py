"""Mixture evidence: a signal with no separate group says nothing, one with a group of faults
counts, a view whose upper group disagrees with the losses is dropped."""
import numpy as np
import pytest

from detection.metrics import ranking_report
from detection.mixture import MixtureEvidence, fit_two_groups


def test_one_gaussian_is_one_group_and_a_shifted_minority_is_two():
    rng = np.random.default_rng(0)
    assert fit_two_groups(rng.normal(size=3000)) is None
    values = np.r_[rng.normal(size=2700), rng.normal(4.0, 1.0, size=300)]
    groups = fit_two_groups(values)
    assert groups is not None
    assert groups.means[0] == pytest.approx(0.0, abs=0.2) and 3.0 < groups.means[1] < 5.0
    ratio = groups.log_ratio(np.array([-1.0, 2.0, 6.0]))
    assert ratio[0] < 0 < ratio[2] and np.all(np.diff(ratio) > 0)


def test_constant_or_tiny_signals_have_no_groups():
    assert fit_two_groups(np.ones(100)) is None
    assert fit_two_groups(np.arange(5.0)) is None


def test_a_view_whose_upper_group_is_the_clean_items_is_dropped():
    """The activation view's small cluster is a class's correct items (many wrong labels into one
    class): its upper group has low loss, so it disagrees with the loss and is not counted."""
    rng = np.random.default_rng(1)
    n = 4000
    fault = rng.random(n) < 0.15
    loss = rng.normal(size=n) + 3.0 * fault
    view = rng.normal(size=n) + 4.0 * (~fault & (rng.random(n) < 0.2))
    signals = np.stack([loss, view])
    mixture = MixtureEvidence.fit(signals, names=("loss", "view"), core=1)
    assert mixture.kept == (True, False)
    assert "dropped" in mixture.summary()["view"]
    assert ranking_report(mixture.evidence(signals), fault)["ap"] == pytest.approx(
        ranking_report(loss, fault)["ap"], abs=0.02)


def test_percentiles_are_on_the_training_scale():
    rng = np.random.default_rng(2)
    signals = np.stack([np.r_[rng.normal(size=900), rng.normal(5, 1, size=100)]])
    mixture = MixtureEvidence.fit(signals, names=("loss",), core=1)
    pct = mixture.percentile(signals)
    assert pct.shape == (1000,) and 0 < pct.min() and pct.max() == 1.0
    assert mixture.percentile(np.array([[100.0]]))[0] == 1.0


def test_bad_shapes_are_refused_with_a_message():
    with pytest.raises(ValueError, match=r"signals must be \(2, N\)"):
        MixtureEvidence.fit(np.zeros((3, 10)), names=("a", "b"), core=1)
    with pytest.raises(ValueError, match="core"):
        MixtureEvidence.fit(np.zeros((2, 10)), names=("a", "b"), core=0)
    mixture = MixtureEvidence.fit(np.random.default_rng(0).normal(size=(2, 50)), names=("a", "b"), core=1)
    with pytest.raises(ValueError, match=r"signals must be \(2, N\)"):
        mixture.evidence(np.zeros((1, 5)))
