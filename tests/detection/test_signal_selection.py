"""The views vote finds the right signal: synthetic runs in which exactly one signal carries the
faults (the loss for random flips, the activation view for a systematic confusion, the outlier
view for foreign images) and the others carry nothing. The vote, built only from what the run
shows (which class the model's disagreements go to, how well each view singles them out, how
many items lie far outside their class), must rank the faults about as well as the right
signal alone, and far better than the wrong ones. Today it does so only where the loss is the
right signal (see ``LIMITATION``)."""
import numpy as np
import pytest

from detection.metrics import ranking_report
from detection.vote import view_gates, views_vote

C, PER_CLASS = 10, 300


def _pct(s):
    return np.searchsorted(np.sort(s), s, side="right") / len(s)


def _run(kind: str, seed: int = 0):
    """(labels, predicted, loss, activation, log_outlier, is_fault) of a synthetic run."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(C), PER_CLASS)
    n = len(labels)
    loss, act, outl = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
    predicted = labels.copy()
    natural = rng.random(n) < 0.03                      # the model's own errors on clean items
    predicted[natural] = (labels[natural] + rng.integers(1, C, natural.sum())) % C
    fault = np.zeros(n, bool)
    if kind == "flips":                                 # random flips: the loss sees them
        fault = rng.random(n) < 0.10
        loss[fault] += 2.5
        missed = fault & (rng.random(n) < 0.7)
        predicted[missed] = (labels[missed] + rng.integers(1, C, missed.sum())) % C
    elif kind == "confusion":                           # items of c + 1 labeled c, in half the classes
        fault = (labels < C // 2) & (rng.random(n) < 0.2)
        act[fault] += 3.0                               # their own cluster in the activations
        missed = fault & (rng.random(n) < 0.4)          # the model learned the rest
        predicted[missed] = labels[missed] + 1
        loss[missed] += 2.5
    elif kind == "outliers":                            # foreign images, memorised by the model
        fault = rng.random(n) < 0.05
        outl[fault] += 8.0
    return labels, predicted, loss, act, outl, fault


LIMITATION = ("the vote averages percentiles, so where the right view is in, the core's noise is averaged in "
              "with it, and classes the view has no say in keep their noise at full scale: it does not degrade "
              "to the one signal that carries the faults (issue 11 item 3, still open)")


@pytest.mark.parametrize("kind, right", [
    ("flips", "loss"),
    pytest.param("confusion", "activation", marks=pytest.mark.xfail(strict=True, reason=LIMITATION)),
    pytest.param("outliers", "outlier", marks=pytest.mark.xfail(strict=True, reason=LIMITATION)),
])
def test_the_vote_finds_the_signal_that_carries_the_faults(kind, right):
    """AP of the vote within 0.05 of the right signal's, and 0.2 above each wrong one's."""
    labels, predicted, loss, act, outl, fault = _run(kind)
    gates = view_gates(predicted, labels, outl, num_classes=C, activation=act)
    vote = views_vote(_pct(loss), _pct(act), _pct(outl), labels, gates)
    single = {name: ranking_report(s, fault)["ap"]
              for name, s in (("loss", loss), ("activation", act), ("outlier", outl))}
    ap = ranking_report(vote, fault)["ap"]
    assert max(single, key=single.get) == right          # the case is what it says
    assert ap >= single[right] - 0.05, (ap, single)
    assert all(ap > s + 0.2 for name, s in single.items() if name != right), (ap, single)


def test_the_activation_view_gets_a_say_only_where_the_run_shows_its_fault():
    """The measured say of the activation view: high in the confused classes, none elsewhere,
    and none at all on random flips."""
    labels, predicted, _, act, outl, _ = _run("confusion")
    gates = view_gates(predicted, labels, outl, num_classes=C, activation=act)
    assert (gates[0, :C // 2] > 0.25).all() and (gates[0, C // 2:] == 0).all()
    labels, predicted, _, act, outl, _ = _run("flips")
    assert view_gates(predicted, labels, outl, num_classes=C, activation=act)[0].max() < 0.1
