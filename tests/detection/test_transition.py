import numpy as np
import pytest

from detection.metrics import ranking_report
from detection.transition import confident_transition, fault_posterior


def _confused_model(seed: int, *, n: int = 4000, c: int = 5, sources=(0, 1), target: int = 2, rate: float = 0.4):
    """Probabilities of a model that learned part of a many-to-one confusion: ``rate`` of the
    items of ``sources`` carry label ``target``; the model gives those items a moderate
    probability of the target, and a few clean items of other classes are ambiguous."""
    rng = np.random.default_rng(seed)
    true = rng.integers(0, c, n)
    given = true.copy()
    fault = np.isin(true, sources) & (rng.random(n) < rate)
    given[fault] = target
    logits = rng.normal(0, 1, (n, c))
    logits[np.arange(n), true] += 4.0
    logits[fault, target] += 3.0                       # the model leans to the wrong label
    ambiguous = ~np.isin(true, sources) & (rng.random(n) < 0.15)
    other = (true[ambiguous] + 1 + rng.integers(0, c - 1, ambiguous.sum())) % c
    logits[np.flatnonzero(ambiguous), other] += 4.5    # clean, but the model prefers another class
    p = np.exp(logits - logits.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True), given, fault


def test_the_transition_finds_where_the_labels_flow():
    probs, given, _ = _confused_model(0)
    t = confident_transition(probs, given)
    assert t.shape == (5, 5) and np.allclose(t.sum(1), 1.0)
    # the sources' items carry the target's label far more often than any other wrong label
    for s in (0, 1):
        wrong = np.delete(t[s], s)
        assert t[s, 2] == wrong.max() and t[s, 2] > 3 * np.sort(wrong)[-2]


def test_the_posterior_ranks_a_systematic_confusion_better_than_the_loss_and_the_margin():
    probs, given, fault = _confused_model(1)
    post = fault_posterior(probs, given, confident_transition(probs, given))
    assert post.shape == (len(given),) and ((post >= 0) & (post <= 1)).all()
    rows = np.arange(len(given))
    loss = -np.log(probs[rows, given])
    others = probs.copy()
    others[rows, given] = -1
    margin = others.max(1) - probs[rows, given]
    ap = {name: ranking_report(s, fault)["ap"] for name, s in
          [("posterior", post), ("loss", loss), ("margin", margin)]}
    assert ap["posterior"] > max(ap["loss"], ap["margin"]) + 0.05, ap


def test_under_a_flat_transition_the_posterior_orders_items_like_their_loss():
    rng = np.random.default_rng(2)
    probs = rng.dirichlet(np.ones(4), 500)
    labels = rng.integers(0, 4, 500)
    flat = np.full((4, 4), 0.1) + np.eye(4) * 0.6
    post = fault_posterior(probs, labels, flat)
    loss = -np.log(probs[np.arange(500), labels])
    assert np.array_equal(np.argsort(post, kind="stable"), np.argsort(loss, kind="stable"))


def test_a_class_without_items_gets_a_flat_row_and_no_nan():
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.6, 0.4, 0.0]])
    t = confident_transition(probs, np.array([0, 1, 0]))
    assert np.isfinite(t).all() and np.allclose(t[2], 1 / 3)
    assert np.isfinite(fault_posterior(probs, np.array([0, 1, 0]), t)).all()


def test_bad_shapes_are_refused_with_a_message():
    with pytest.raises(ValueError, match="labels must lie"):
        confident_transition(np.full((2, 2), 0.5), np.array([0, 2]))
    with pytest.raises(ValueError, match="transition must be"):
        fault_posterior(np.full((2, 2), 0.5), np.array([0, 1]), np.eye(3))
    with pytest.raises(ValueError, match="probs must be"):
        confident_transition(np.full(4, 0.5), np.array([0, 1, 0, 1]))
