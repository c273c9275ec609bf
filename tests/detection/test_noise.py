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


from detection.noise import (FAULT_KINDS, LABEL_NOISE_KINDS, OOD_ORIGINS, FaultPart,  # noqa: E402
                             outlier_images, plant_faults)


@pytest.mark.parametrize("kind", LABEL_NOISE_KINDS)
def test_every_label_kind_changes_exactly_the_items_it_reports(kind):
    y = np.repeat(np.arange(10), 60)
    noisy, fault = inject_label_noise(y, rate=0.1, kind=kind, num_classes=10, seed=4)
    assert fault.any()
    assert ((noisy != y) == fault).all()
    assert noisy.min() >= 0 and noisy.max() < 10


def test_permutation_noise_is_one_consistent_mapping_without_fixed_points():
    y = np.repeat(np.arange(10), 60)
    noisy, fault = inject_label_noise(y, rate=0.2, kind="permutation", seed=5)
    mapping = {}
    for a, b in zip(y[fault], noisy[fault]):
        assert mapping.setdefault(int(a), int(b)) == b
    assert len(mapping) == 10 and sorted(mapping.values()) == list(range(10))
    assert all(a != b for a, b in mapping.items()) and mapping != {c: (c + 1) % 10 for c in range(10)}


def test_confusion_inside_classes_stays_inside_them():
    y = np.repeat(np.arange(10), 60)
    noisy, fault = inject_label_noise(y, rate=0.1, kind="classes", classes=[2, 4, 6], seed=6)
    assert set(y[fault]) == {2, 4, 6} and set(noisy[fault]) == {2, 4, 6}
    assert fault.sum() == 60


def test_many_to_one_labels_the_source_classes_as_the_target():
    y = np.repeat(np.arange(10), 60)
    noisy, fault = inject_label_noise(y, rate=0.1, kind="many-to-one", classes=[1, 7], target=3, seed=6)
    assert set(y[fault]) == {1, 7} and set(noisy[fault]) == {3} and fault.sum() == 60
    with pytest.raises(ValueError, match="cannot also be a source"):
        inject_label_noise(y, rate=0.1, kind="many-to-one", classes=[1, 3], target=3)


def test_label_noise_refuses_to_make_the_wrong_label_the_majority():
    y = np.repeat(np.arange(10), 60)
    with pytest.raises(ValueError, match="at most half"):
        inject_label_noise(y, rate=0.2, kind="classes", classes=[0, 1, 2])   # 120 of 180 items


def test_label_noise_only_among_the_allowed_items():
    y = np.repeat(np.arange(10), 60)
    among = np.arange(600) % 2 == 0
    noisy, fault = inject_label_noise(y, rate=0.1, seed=1, among=among)
    assert fault.sum() == 60 and not fault[~among].any()


@pytest.mark.parametrize("origin", [o for o in OOD_ORIGINS if o != "other"])
def test_outlier_origins_are_seeded_images_in_range(origin):
    a = outlier_images(6, origin=origin, size=28, channels=1, seed=2)
    b = outlier_images(6, origin=origin, size=28, channels=1, seed=2)
    assert a.shape == (6, 1, 28, 28) and a.dtype == np.float32 and (a == b).all()
    assert a.min() >= 0 and a.max() <= 1 and (a.reshape(6, -1).std(1) > 0).all()


def test_outliers_from_another_data_set_are_its_items():
    other = np.random.default_rng(0).random((30, 1, 28, 28)).astype(np.float32)
    out = outlier_images(5, origin="other", size=28, channels=1, seed=0, other=other)
    assert all(any((o == p).all() for p in other) for o in out)
    with pytest.raises(ValueError, match="needs the other data set"):
        outlier_images(5, origin="other", size=28, channels=1)


def test_planted_mixture_has_disjoint_exact_ground_truth():
    rng = np.random.default_rng(0)
    x = rng.random((500, 1, 28, 28)).astype(np.float32)
    y = np.repeat(np.arange(10), 50)
    parts = [FaultPart("pair", 0.06), FaultPart("many-to-one", 0.04, classes=(0, 1, 2), target=9),
             FaultPart("ood", 0.04, origin="pattern"), FaultPart("ood", 0.02, origin="noise")]
    p = plant_faults(x, y, parts, num_classes=10, seed=3)
    assert np.bincount(p.part + 1).tolist() == [420, 30, 20, 20, 10]
    assert (p.is_fault == (p.part >= 0)).all()
    relabeled = p.part[(p.labels != y)]
    assert set(relabeled) == {0, 1}                                  # only label parts change labels
    replaced = np.flatnonzero((p.x != x).any(axis=(1, 2, 3)))
    assert set(p.part[replaced]) == {2, 3} and len(replaced) == 30   # only outlier parts change images
    assert (p.true_labels[p.part >= 2] == -1).all() and (p.true_labels[p.part < 2] == y[p.part < 2]).all()
    again = plant_faults(x, y, parts, num_classes=10, seed=3)
    assert (again.part == p.part).all() and (again.x == p.x).all() and (again.labels == p.labels).all()


def test_fault_part_validates_its_kind():
    assert "ood" in FAULT_KINDS
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultPart("flip", 0.1)
    with pytest.raises(ValueError, match="unknown outlier origin"):
        FaultPart("ood", 0.1, origin="moon")
