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


def test_dfaulo_fits_on_constant_images_without_losing_every_item():
    from detection.pipeline import SuspicionRanker
    x = np.zeros((40, 1, 28, 28), np.float32)
    y = np.arange(40) % 2
    r = SuspicionRanker.fit(x, y, num_classes=2, method="dfaulo", epochs=1)
    assert r.scores.shape == (40,) and np.isfinite(r.scores).all()
