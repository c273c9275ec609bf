import copy

import numpy as np
import pytest

from detection.metrics import ranking_report
from detection.pipeline import SuspicionRanker


def test_features_have_5c_plus_7_paper_columns_and_extras(dfaulo_ranker):
    c, e = 10, len(dfaulo_ranker.models.ckpt_lrs)
    assert dfaulo_ranker.features.shape == (600, 5 * c + 7 + e + 6)
    flags = dfaulo_ranker.features[:, 5 * c:5 * c + 3]
    assert set(np.unique(flags)) <= {0.0, 1.0}
    # each view flags about alpha = 5% per class, never the whole minority cluster
    assert 0.02 < flags.mean(0).max() < 0.1


def test_three_mutants_are_independent_copies_of_the_original(dfaulo_ranker):
    m = dfaulo_ranker.models
    assert len(m.mutant_states) == 3
    w = [s["head.weight"] for s in m.mutant_states]
    assert not any(np.allclose(w[i], w[j]) for i in range(3) for j in range(i + 1, 3))


def test_offline_scores_find_faults_well_above_chance(digits_small, dfaulo_ranker):
    _, _, fault = digits_small
    s = dfaulo_ranker.scores
    assert s.shape == (600,) and ((0 <= s) & (s <= 1)).all()
    assert ranking_report(s, fault)["ap"] > 0.5     # chance is 0.1


def test_refit_is_refused_when_the_vote_already_ranks_the_verdicts(digits_small, dfaulo_ranker):
    """Random flips: the vote ranks the reviewed items almost perfectly, a refit on them cannot
    beat it by the margin, so the initial ranking stays, bit for bit."""
    _, _, fault = digits_small
    ranker = copy.deepcopy(dfaulo_ranker)
    before = ranker.scores.copy()
    order = np.argsort(-before)
    reviewed = np.r_[order[:40], order[40::10]]          # the top suspects and a spot check of the rest
    assert min(fault[reviewed].sum(), (~fault[reviewed]).sum()) >= ranker.meta.min_each
    after = ranker.update(reviewed, fault[reviewed])
    assert ranker.verdict_count == len(reviewed)
    validation = ranker.meta.validation
    assert validation["verdicts"] == len(reviewed) and validation["folds"] == 5
    assert validation["initial_auc"] > 0.98
    assert validation["refit_auc"] - validation["initial_auc"] <= ranker.meta.min_gain
    assert validation["accepted"] is False and not ranker.meta.online
    assert np.array_equal(before, after)
    again = ranker.update(reviewed[:10], fault[reviewed[:10]])   # the same verdicts again: no change
    assert ranker.verdict_count == len(reviewed) and np.array_equal(after, again)


def test_refit_is_adopted_when_the_verdicts_follow_a_rule_the_vote_misses(dfaulo_ranker):
    """A reviewer who counts odd-looking images as faults (the top 10% of the outlier view's
    score; the outlier view has no say in the vote on flipped digits): the refit learns that,
    passes the cross-validation, and moves the odd images nobody reviewed up."""
    from detection.signals import vote_columns
    ranker = copy.deepcopy(dfaulo_ranker)
    outlier = ranker.features[:, vote_columns(10, len(ranker.models.ckpt_lrs))[2]]
    odd = outlier >= np.quantile(outlier, 0.9)
    reviewed = np.random.default_rng(0).choice(600, 300, replace=False)
    rest = np.setdiff1d(np.arange(600), reviewed)
    ap_before = ranking_report(ranker.scores[rest], odd[rest])["ap"]
    after = ranker.update(reviewed, odd[reviewed])
    validation = ranker.meta.validation
    assert validation["accepted"] is True and ranker.meta.online
    assert validation["refit_auc"] - validation["initial_auc"] > ranker.meta.min_gain
    ap_after = ranking_report(after[rest], odd[rest])["ap"]
    assert ap_after > ap_before + 0.15, (ap_before, ap_after)


def test_update_rejects_bad_indices(dfaulo_ranker):
    with pytest.raises(ValueError, match="indices must be integers"):
        dfaulo_ranker.update([600], [True])
    with pytest.raises(ValueError, match="equal length"):
        dfaulo_ranker.update([1, 2], [True])


def test_save_load_round_trip_and_score_new(tmp_path, digits_small, dfaulo_ranker):
    x, y, _ = digits_small
    dfaulo_ranker.save(tmp_path / "r")
    loaded = SuspicionRanker.load(tmp_path / "r")
    assert np.allclose(loaded.scores, dfaulo_ranker.scores)
    new_scores, predicted = loaded.score_new(x[:20], y[:20])
    assert np.allclose(new_scores, dfaulo_ranker.scores[:20], atol=1e-5)
    assert (predicted == dfaulo_ranker.predicted[:20]).all()
    with pytest.raises(ValueError, match="items of shape"):
        loaded.score_new(np.zeros((2, 3, 32, 32), np.float32), np.array([0, 1]))


def test_load_from_empty_folder_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="holds no saved ranker"):
        SuspicionRanker.load(tmp_path)


@pytest.mark.parametrize("method", ["loss", "tracin"])
def test_baseline_methods_give_percentile_scores(digits_small, trained, method):
    x, y, fault = digits_small
    r = SuspicionRanker.fit(x, y, num_classes=10, method=method, base=trained)
    assert r.scores.min() >= 0 and r.scores.max() == 1.0
    assert ranking_report(r.scores, fault)["ap"] > 0.5


def test_fit_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown method"):
        SuspicionRanker.fit(np.zeros((30, 1, 28, 28), np.float32), np.arange(30) % 3, num_classes=3, method="x")
    with pytest.raises(ValueError, match="labels must lie"):
        SuspicionRanker.fit(np.zeros((30, 1, 28, 28), np.float32), np.arange(30) % 4, num_classes=3)


def test_loss_vote_is_the_vote_as_first_built(digits_small, trained):
    """initial="loss-vote": the ensemble loss percentile alone, the activation view's say through
    the fixed ramp; the default vote adds the margin and the noise posterior to the core and
    measures the say."""
    from detection.signals import vote_columns
    from detection.vote import confusion_concentration, ramp, CONFUSION_RAMP, views_vote
    x, y, _ = digits_small
    old = SuspicionRanker.fit(x, y, num_classes=10, method="dfaulo", seed=0, base=trained, initial="loss-vote")
    assert old.models.vote_core == ("ensemble_loss",) and old.reference.shape == (3, len(y))
    expected_act = ramp(confusion_concentration(old.predicted, y, num_classes=10), *CONFUSION_RAMP)
    assert np.allclose(old.models.gates[0], expected_act)
    cols = vote_columns(10, len(old.models.ckpt_lrs))
    pct = [(np.sort(old.features[:, c])[None, :] <= old.features[:, c][:, None]).mean(1) for c in cols]
    assert np.allclose(old.inputs[:, -1], views_vote(*pct, y, old.models.gates))
    new = SuspicionRanker.fit(x, y, num_classes=10, method="dfaulo", seed=0, base=trained)
    assert new.models.vote_core == ("ensemble_loss", "margin", "noise_posterior")
    assert new.reference.shape == (5, len(y)) and new.models.noise_transition.shape == (10, 10)


def test_a_ranker_saved_before_the_vote_core_loads_with_the_loss_vote(tmp_path, digits_small, trained):
    import joblib
    x, y, _ = digits_small
    old = SuspicionRanker.fit(x, y, num_classes=10, method="dfaulo", seed=0, base=trained, initial="loss-vote")
    old.save(tmp_path / "r")
    rest = joblib.load(tmp_path / "r" / "ranker.joblib")
    del rest["vote_core"]                                # what rankers saved before it hold
    joblib.dump(rest, tmp_path / "r" / "ranker.joblib")
    loaded = SuspicionRanker.load(tmp_path / "r")
    assert loaded.models.vote_core == ("ensemble_loss",)
    assert np.array_equal(loaded.scores, old.scores)
    assert np.allclose(loaded.score_new(x[:20], y[:20])[0], old.scores[:20])


def test_the_default_ranking_is_the_mean_of_the_fault_kinds_and_the_mixture_percentiles(digits_small, trained):
    from detection.signals import MIXTURE_SIGNALS, vote_parts, mixture_signals
    x, y, _ = digits_small
    r = SuspicionRanker.fit(x, y, num_classes=10, method="dfaulo", seed=0, base=trained)
    vote = SuspicionRanker.fit(x, y, num_classes=10, method="dfaulo", seed=0, base=trained, initial="vote")
    assert r.models.mixture.names == MIXTURE_SIGNALS and vote.models.mixture is None
    assert vote.models.fault_kinds is None and r.models.fault_kinds is not None
    parts = vote_parts(r.features, r.models, r.reference)
    kinds = r.models.fault_kinds.evidence(parts.core, parts.activation, parts.outlier, r.models.gates, y)
    kinds_pct = (np.sort(kinds)[None, :] <= kinds[:, None]).mean(1)
    mix_pct = r.models.mixture.percentile(mixture_signals(r.features, r.models))
    assert np.allclose(r.scores, 0.5 * (kinds_pct + mix_pct))


def test_a_ranker_saved_before_the_fault_kinds_averages_the_vote_with_the_mixture(tmp_path, digits_small, trained):
    import joblib
    from detection.signals import mixture_signals
    x, y, _ = digits_small
    r = SuspicionRanker.fit(x, y, num_classes=10, method="dfaulo", seed=0, base=trained)
    vote = SuspicionRanker.fit(x, y, num_classes=10, method="dfaulo", seed=0, base=trained, initial="vote")
    r.save(tmp_path / "r")
    rest = joblib.load(tmp_path / "r" / "ranker.joblib")
    del rest["fault_kinds"]                              # what rankers saved before it hold
    rest["vote_sorted"] = np.sort(vote.scores)
    joblib.dump(rest, tmp_path / "r" / "ranker.joblib")
    loaded = SuspicionRanker.load(tmp_path / "r")
    vote_pct = (np.sort(vote.scores)[None, :] <= vote.scores[:, None]).mean(1)
    mix_pct = r.models.mixture.percentile(mixture_signals(r.features, r.models))
    assert loaded.models.fault_kinds is None
    assert np.allclose(loaded.scores, 0.5 * (vote_pct + mix_pct))


def test_a_saved_default_ranker_scores_the_same_after_loading(tmp_path, digits_small, trained):
    import joblib
    x, y, _ = digits_small
    r = SuspicionRanker.fit(x, y, num_classes=10, method="dfaulo", seed=0, base=trained)
    r.save(tmp_path / "r")
    loaded = SuspicionRanker.load(tmp_path / "r")
    assert np.array_equal(loaded.scores, r.scores)
    assert np.allclose(loaded.score_new(x[:20], y[:20])[0], r.scores[:20])
    rest = joblib.load(tmp_path / "r" / "ranker.joblib")
    del rest["mixture"], rest["vote_sorted"]             # what rankers saved before it hold
    joblib.dump(rest, tmp_path / "r" / "ranker.joblib")
    assert SuspicionRanker.load(tmp_path / "r").models.mixture is None


def test_a_ranker_saved_before_the_noise_posterior_scores_as_it_did(tmp_path, digits_small, trained):
    """Rankers saved before the noise posterior hold no transition, a two-signal vote core and a
    mixture fitted on six signals named as they were then: loaded, they score by those."""
    import joblib
    from detection.signals import named_signals, ranker_inputs, vote_reference
    from detection.mixture import MixtureEvidence
    from detection.ranker import MetaRanker
    x, y, _ = digits_small
    new = SuspicionRanker.fit(x, y, num_classes=10, method="dfaulo", seed=0, base=trained)
    m = new.models
    m.noise_transition, m.vote_core, m.mixture, m.vote_sorted = None, ("ensemble_loss", "margin"), None, None
    reference = vote_reference(new.features, m)
    m.vote_sorted = np.sort(ranker_inputs(new.features, m, reference)[:, -1])
    old_names = ("ensemble_loss", "margin", "checkpoint_loss", "tracin", "activation", "outlier")
    six = named_signals(new.features, m, ("log_ensemble_loss",) + old_names[1:])
    m.mixture = MixtureEvidence.fit(six, names=old_names, core=4, seed=0)
    meta = MetaRanker(seed=0).fit_vote(ranker_inputs(new.features, m, reference))
    r = SuspicionRanker(method="dfaulo", models=m, labels=new.labels, predicted=new.predicted,
                        features=new.features, raw=None, meta=meta, reference=reference)
    r.save(tmp_path / "r")
    rest = joblib.load(tmp_path / "r" / "ranker.joblib")
    del rest["noise_transition"]                         # what rankers saved before it hold
    joblib.dump(rest, tmp_path / "r" / "ranker.joblib")
    loaded = SuspicionRanker.load(tmp_path / "r")
    assert loaded.models.noise_transition is None and loaded.models.mixture.names == old_names
    assert np.array_equal(loaded.scores, r.scores)
    assert np.allclose(loaded.score_new(x[:20], y[:20])[0], r.scores[:20])


def test_fit_rejects_an_unknown_initial_ranker(digits_small, trained):
    x, y, _ = digits_small
    with pytest.raises(ValueError, match="unknown initial ranker"):
        SuspicionRanker.fit(x, y, num_classes=10, method="dfaulo", seed=0, base=trained, initial="consensus")


def test_label_prior_has_a_share_for_every_class_and_balanced_undoes_it():
    from detection.dfaulo import balanced, label_prior
    prior = label_prior(np.array([0, 0, 0, 1]), num_classes=3)
    assert np.allclose(prior, [4 / 7, 2 / 7, 1 / 7]) and prior.min() > 0
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    assert np.array_equal(balanced(probs, None), probs)
    assert np.allclose(balanced(probs, np.full(3, 1 / 3)), probs)           # balanced labels: unchanged
    out = balanced(probs, prior)
    assert np.allclose(out.sum(1), 1) and np.allclose(out[0], [0.6 / 4, 0.3 / 2, 0.1] / np.sum([0.15, 0.15, 0.1]))


def test_the_margin_compares_classes_without_the_label_prior_so_many_to_one_faults_stand_out():
    """Class 0 receives a third of class 1's and class 2's items (many-to-one): the model's
    probabilities lean to class 0 by its inflated share of the labels, so the faults' own label
    looks plausible (raw margin about 0). Divided by the prior, their true class wins clearly."""
    from detection.dfaulo import DFauLoModels, ModelOutputs, balanced, build_features, label_prior
    from detection.signals import margin_column
    rng = np.random.default_rng(0)
    c = 3
    true = np.repeat(np.arange(c), 300)
    labels = true.copy()
    fault = (true > 0) & (rng.random(len(true)) < 1 / 3)
    labels[fault] = 0
    prior = label_prior(labels, num_classes=c)
    evidence = np.full((len(true), c), 0.2) + 0.6 * np.eye(c)[true] + 0.1 * rng.random((len(true), c))
    hard = rng.random(len(true)) < 0.15                                       # clean items the model finds hard
    evidence[hard] = 1 / 3 + 0.05 * rng.random((hard.sum(), c))
    probs = evidence * prior[None, :]                                         # what a classifier reports
    probs /= probs.sum(1, keepdims=True)
    rows = np.arange(len(labels))

    def margin(p):
        others = p.copy()
        others[rows, labels] = -1
        return p[rows, labels] - others.max(1)

    raw_ap = ranking_report(-margin(probs), fault)["ap"]
    fair_ap = ranking_report(-margin(balanced(probs, prior)), fault)["ap"]
    assert fair_ap > raw_ap + 0.2 and fair_ap > 0.9, (raw_ap, fair_ap)
    # build_features puts the corrected margin in its margin column
    e, n = 2, len(labels)
    out = ModelOutputs(probs=probs.astype(np.float32), mutant_probs=np.stack([probs] * 3).astype(np.float32),
                       ckpt_probs=np.stack([probs] * e).astype(np.float32), ckpt_hnorm2=np.ones((e, n), np.float32),
                       outlier=np.ones((n, c)), activation=np.zeros((n, c)), ensemble_probs=probs.astype(np.float32))
    models = DFauLoModels(input_shape=(1, 8, 8), num_classes=c, base_state={}, mutant_states=[], ckpt_states=[],
                          ckpt_lrs=np.ones(e), outlier_view=None, activation_view=None,
                          thresholds=np.zeros((3, c)), gates=np.zeros((2, c)), label_prior=prior)
    features = build_features(out, labels, models)
    assert np.allclose(features[:, margin_column(c, e)], margin(balanced(probs, prior)), atol=1e-5)


def test_a_fitted_ranker_keeps_its_label_prior_and_one_saved_before_it_loads_without(tmp_path, digits_small,
                                                                                     trained):
    import joblib

    from detection.dfaulo import label_prior
    x, y, _ = digits_small
    r = SuspicionRanker.fit(x, y, num_classes=10, method="dfaulo", seed=0, base=trained)
    assert np.allclose(r.models.label_prior, label_prior(y, num_classes=10))
    r.save(tmp_path / "r")
    assert np.array_equal(SuspicionRanker.load(tmp_path / "r").models.label_prior, r.models.label_prior)
    rest = joblib.load(tmp_path / "r" / "ranker.joblib")
    del rest["label_prior"]                               # what rankers saved before it hold
    joblib.dump(rest, tmp_path / "r" / "ranker.joblib")
    assert SuspicionRanker.load(tmp_path / "r").models.label_prior is None
