import numpy as np

from detection.views import ActivationView, OutlierView, class_thresholds


def test_activation_view_scores_the_far_cluster_as_the_minority_side():
    rng = np.random.default_rng(0)
    cluster = np.r_[rng.normal(size=(320, 8)), rng.normal(size=(80, 8)) + 6.0]   # 20% far cluster
    feats = cluster.astype(np.float32)
    labels = np.zeros(400, int)
    own = ActivationView(num_classes=1, seed=0).fit(feats, labels).score_all(feats)[:, 0]
    assert (own[320:] > 0).all() and (own[:320] < 0).mean() > 0.95


def test_outlier_view_ranks_foreign_items_first_despite_contamination():
    rng = np.random.default_rng(1)
    digits = np.zeros((200, 1, 8, 8), np.float32)
    digits[:, :, 2:6, 3:5] = 1.0                               # a clean "stroke"
    digits += rng.normal(0, 0.05, digits.shape).astype(np.float32)
    digits[:20] = rng.random((20, 1, 8, 8), dtype=np.float32)  # 10% foreign textures
    labels = np.zeros(200, int)
    scores = OutlierView(num_classes=1).fit(digits, labels).score_all(digits)[:, 0]
    assert set(np.argsort(-scores)[:20]) == set(range(20))


def test_class_thresholds_flag_top_alpha_per_class():
    scores = np.r_[np.arange(100), np.arange(100) * 10].astype(float)
    labels = np.r_[np.zeros(100, int), np.ones(100, int)]
    thr = class_thresholds(scores, labels, num_classes=3, alpha=0.05)
    assert ((scores >= thr[labels])[:100].sum(), (scores >= thr[labels])[100:].sum()) == (5, 5)
    assert thr[2] == np.inf


def test_top_per_class_never_takes_a_whole_class_even_with_equal_scores():
    from detection.views import top_per_class
    labels = np.r_[np.zeros(40, int), np.ones(3, int)]
    mask = top_per_class(np.zeros(43), labels, num_classes=2, alpha=0.05)
    assert mask[:40].sum() == 2 and mask[40:].sum() == 1


def test_outlier_view_scores_an_item_against_any_class():
    """Fitted per class, the view scores every item against every class: an item is far from
    the class it does not look like, near its own (what a flipped label looks like to it)."""
    rng = np.random.default_rng(2)
    x = np.zeros((120, 1, 8, 8), np.float32)
    x[:60, :, :, :4] = 1.0                                      # class 0: left half bright
    x[60:, :, :, 4:] = 1.0                                      # class 1: right half bright
    x += rng.normal(0, 0.05, x.shape).astype(np.float32)
    labels = np.r_[np.zeros(60, int), np.ones(60, int)]
    scores = OutlierView(num_classes=2).fit(x, labels).score_all(x)
    assert (scores[:60, 1] > 5 * scores[:60, 0]).all() and (scores[60:, 0] > 5 * scores[60:, 1]).all()


def test_each_view_flags_the_faults_it_targets_on_flipped_digits(digits_small, dfaulo_ranker):
    """On 10% random flips of real digits: the output-level view (loss) flags almost only
    faults, the input-level view (a flipped digit is far from its given class's median image)
    mostly faults, the hidden-level view still far more often than the 10% base rate."""
    _, _, fault = digits_small
    c = 10
    flags = dfaulo_ranker.features[:, 5 * c:5 * c + 3].astype(bool)      # outlier, activation, loss
    precision = [fault[flags[:, v]].mean() for v in range(3)]
    assert precision[2] >= 0.9 and precision[0] >= 0.7 and precision[1] >= 0.3, precision


def test_dfaulo_fits_on_constant_images_without_losing_every_item():
    """All views tie on constant images; each must still leave its mutant items to train on
    (the mutants differ from the original), and identical items get identical scores."""
    import torch
    from detection.pipeline import SuspicionRanker
    x = np.zeros((40, 1, 28, 28), np.float32)
    y = np.arange(40) % 2
    r = SuspicionRanker.fit(x, y, num_classes=2, method="dfaulo", epochs=1)
    base = r.models.base_state
    for state in r.models.mutant_states:
        assert not all(torch.equal(state[k], base[k]) for k in base)
    for c in (0, 1):
        assert len(set(r.scores[y == c].tolist())) == 1
    assert ((0 <= r.scores) & (r.scores <= 1)).all()
