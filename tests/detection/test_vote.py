import numpy as np
import pytest

from detection.vote import activation_evidence, confusion_concentration, tail_fraction, view_gates, views_vote


def _confusions(targets_per_class, n=200, wrong=40, seed=0):
    """Labels 0..9, n items each; ``wrong`` of each class predicted as one of ``targets_per_class(c)``."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), n)
    predicted = labels.copy()
    for c in range(10):
        idx = np.flatnonzero(labels == c)[:wrong]
        predicted[idx] = rng.choice(targets_per_class(c), size=wrong)
    return predicted, labels


def test_systematic_confusion_concentrates_and_random_flips_do_not():
    pred, labels = _confusions(lambda c: [(c + 1) % 10])
    assert confusion_concentration(pred, labels, num_classes=10) == pytest.approx(np.ones(10))
    pred, labels = _confusions(lambda c: [k for k in range(10) if k != c])
    conc = confusion_concentration(pred, labels, num_classes=10)
    assert conc.max() < 0.25                    # an even spread over nine classes, up to sampling


def test_concentration_needs_enough_confused_items_and_handles_two_classes():
    pred, labels = _confusions(lambda c: [(c + 1) % 10], wrong=5)
    assert (confusion_concentration(pred, labels, num_classes=10) == 0).all()
    labels = np.r_[np.zeros(50, int), np.ones(50, int)]
    pred = labels.copy()
    pred[:12] = 1
    assert confusion_concentration(pred, labels, num_classes=2).tolist() == [1.0, 0.0]


def test_tail_fraction_counts_only_items_far_outside_their_class():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 500)
    scores = rng.normal(size=1000)
    scores[:25] += 12.0                          # 5% of class 0 far out; class 1 plain normal
    frac = tail_fraction(scores, labels, num_classes=3)
    assert frac[0] == pytest.approx(0.05, abs=0.004) and frac[1] < 0.002 and frac[2] == 0


def test_gates_open_each_view_only_in_the_classes_that_show_its_fault():
    rng = np.random.default_rng(1)
    pred, labels = _confusions(lambda c: [(c + 1) % 10] if c < 5 else [k for k in range(10) if k != c])
    log_outlier = rng.normal(size=len(labels))
    far = np.flatnonzero(labels == 7)[:20]
    log_outlier[far] += 15.0
    gates = view_gates(pred, labels, log_outlier, num_classes=10)
    assert gates.shape == (2, 10)
    assert (gates[0, :5] == 1).all() and (gates[0, 5:] == 0).all()
    assert gates[1, 7] == 1 and (np.delete(gates[1], 7) == 0).all()


def test_views_vote_is_the_loss_where_the_gates_are_shut():
    loss, act, outl = np.array([0.2, 0.9]), np.array([1.0, 0.0]), np.array([1.0, 1.0])
    labels = np.array([0, 1])
    shut = np.zeros((2, 2))
    assert views_vote(loss, act, outl, labels, shut).tolist() == [0.2, 0.9]
    both = np.ones((2, 2))
    assert views_vote(loss, act, outl, labels, both) == pytest.approx([(0.2 + 1 + 1) / 3, (0.9 + 0 + 1) / 3])


def test_activation_evidence_needs_a_concentrated_confusion_that_the_view_singles_out():
    rng = np.random.default_rng(2)
    pred, labels = _confusions(lambda c: [(c + 1) % 10])          # 40 of 200 per class go to c + 1
    confused = pred != labels
    singled_out = rng.normal(size=len(labels)) + 4.0 * confused
    blind = rng.normal(size=len(labels))
    assert (activation_evidence(pred, labels, singled_out, num_classes=10) > 0.9).all()
    assert (activation_evidence(pred, labels, blind, num_classes=10) < 0.3).all()   # sampling noise only
    pred, labels = _confusions(lambda c: [k for k in range(10) if k != c])   # spread: no say
    assert (activation_evidence(pred, labels, singled_out, num_classes=10) < 0.25).all()
    pred, labels = _confusions(lambda c: [(c + 1) % 10], wrong=5)             # too few to tell
    assert (activation_evidence(pred, labels, singled_out, num_classes=10) == 0).all()


def test_view_gates_measure_the_activation_say_when_given_the_view():
    pred, labels = _confusions(lambda c: [(c + 1) % 10])
    act = (pred != labels).astype(float)
    outl = np.zeros(len(labels))
    measured = view_gates(pred, labels, outl, num_classes=10, activation=act)
    assert measured[0] == pytest.approx(np.ones(10))
    assert np.array_equal(measured[1], view_gates(pred, labels, outl, num_classes=10)[1])
