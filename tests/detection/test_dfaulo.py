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


def test_online_update_uses_verdicts_and_is_idempotent(digits_small, dfaulo_ranker):
    _, _, fault = digits_small
    ranker = copy.deepcopy(dfaulo_ranker)
    before = ranker.scores.copy()
    order = np.argsort(-before)
    reviewed = np.r_[order[:40], order[40::10]]          # the top suspects and a spot check of the rest
    rest = np.setdiff1d(np.arange(600), reviewed)
    ap_before = ranking_report(before[rest], fault[rest])["ap"]
    after = ranker.update(reviewed, fault[reviewed])
    assert ranker.verdict_count == len(reviewed)
    validation = ranker.meta.validation
    assert validation["verdicts"] == len(reviewed) and validation["folds"] >= 2
    # the refit is used only when it ranks held-out verdicts better; either way the items not
    # reviewed stay ranked at least as well as before the verdicts
    assert ranker.meta.online == validation["accepted"]
    assert np.allclose(before, after) != validation["accepted"]
    assert fault[rest].sum() >= 10
    ap_after = ranking_report(after[rest], fault[rest])["ap"]
    assert ap_after >= ap_before - 0.02 and ap_after > 5 * fault[rest].mean()
    again = ranker.update(reviewed[:10], fault[reviewed[:10]])
    assert ranker.verdict_count == len(reviewed) and np.allclose(after, again)


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
