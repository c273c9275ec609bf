import numpy as np
import pytest

from detection.noise import inject_label_noise, inject_ood
from detection.sources import noisy_source


def test_symmetric_noise_flips_exactly_rate_to_other_classes():
    y = np.repeat(np.arange(10), 100)
    noisy, fault = inject_label_noise(y, rate=0.1, kind="symmetric", seed=1)
    assert fault.sum() == 100
    assert (noisy[fault] != y[fault]).all() and (noisy[~fault] == y[~fault]).all()
    assert len(np.unique(noisy[fault] - y[fault])) > 2  # not a single systematic shift


def test_pair_noise_maps_c_to_c_plus_1():
    y = np.repeat(np.arange(10), 50)
    noisy, fault = inject_label_noise(y, rate=0.2, kind="pair", seed=2)
    assert fault.sum() == 100
    assert ((y[fault] + 1) % 10 == noisy[fault]).all()


def test_noise_is_deterministic_under_a_seed():
    y = np.repeat(np.arange(5), 20)
    a = inject_label_noise(y, rate=0.3, seed=7)
    b = inject_label_noise(y, rate=0.3, seed=7)
    assert (a[0] == b[0]).all() and (a[1] == b[1]).all()


@pytest.mark.parametrize("kw, message", [
    ({"rate": 1.5}, "rate"), ({"rate": 0.1, "kind": "weird"}, "unknown label noise kind"),
])
def test_bad_noise_options(kw, message):
    with pytest.raises(ValueError, match=message):
        inject_label_noise(np.arange(10) % 2, **kw)


def test_ood_replaces_items_with_photo_crops_keeping_shape():
    x = np.zeros((50, 1, 28, 28), np.float32)
    noisy, fault = inject_ood(x, rate=0.2, seed=0)
    assert fault.sum() == 10 and noisy.shape == x.shape
    assert (noisy[fault].reshape(10, -1).std(1) > 0.02).all()   # textured photo content
    assert (noisy[~fault] == 0).all() and (x == 0).all()


def test_noisy_source_marks_ood_true_label_minus_one():
    images, true, fault = noisy_source("digits", kind="ood", rate=0.1, seed=0, limit=200)
    assert len(images) == 200 and fault.sum() == 20
    assert (true[fault] == -1).all() and (true[~fault] == images.y[~fault]).all()


def test_partial_pair_noise_touches_only_the_first_half_of_the_classes():
    y = np.repeat(np.arange(10), 100)
    noisy, fault = inject_label_noise(y, rate=0.2, kind="partial-pair", seed=3)
    assert fault.sum() == 100 and (y[fault] < 5).all()
    assert ((y[fault] + 1) % 10 == noisy[fault]).all() and (noisy[~fault] == y[~fault]).all()


def test_mixed_noise_is_half_flips_and_half_photo_crops():
    images, true, fault = noisy_source("digits", kind="mixed", rate=0.2, seed=0, limit=200)
    crops = fault & (true == -1)
    flips = fault & (true != -1)
    assert crops.sum() == 20 and flips.sum() == 20
    assert (images.y[flips] != true[flips]).all() and (images.y[~fault] == true[~fault]).all()
