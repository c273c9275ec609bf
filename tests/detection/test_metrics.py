import numpy as np
import pytest

from detection.metrics import apfd, r_precision, rauc, recall_at, recall_curve, ranking_report

# 10 items, order by score: faults at positions 1, 3, 6 (1-based)
SCORES = np.array([10, 9, 8, 7, 6, 5, 4, 3, 2, 1], float)
FAULT = np.array([1, 0, 1, 0, 0, 1, 0, 0, 0, 0], bool)


def test_recall_curve_and_recall_at():
    assert np.allclose(recall_curve(SCORES, FAULT)[:6], [1 / 3, 1 / 3, 2 / 3, 2 / 3, 2 / 3, 1])
    assert recall_at(SCORES, FAULT, fraction=0.2) == pytest.approx(1 / 3)
    assert recall_at(SCORES, FAULT, fraction=0.6) == pytest.approx(1.0)


def test_r_precision_counts_faults_in_first_r():
    assert r_precision(SCORES, FAULT) == pytest.approx(2 / 3)


def test_rauc_relative_to_ideal():
    # first 3 inspected: found 1/3, 1/3, 2/3 = 4/3; ideal 1/3, 2/3, 1 = 2
    assert rauc(SCORES, FAULT, fraction=0.3) == pytest.approx((4 / 3) / 2)
    assert rauc(np.where(FAULT, 1.0, 0.0), FAULT) == pytest.approx(1.0)


def test_apfd_hand_computed():
    assert apfd(SCORES, FAULT) == pytest.approx(1 - (1 + 3 + 6) / (3 * 10) + 1 / 20)


def test_report_ap_matches_hand_value():
    rep = ranking_report(SCORES, FAULT)
    assert rep["ap"] == pytest.approx((1 / 1 + 2 / 3 + 3 / 6) / 3)
    assert rep["auroc"] == pytest.approx(1 - (0 + 1 + 3) / 21)  # clean items ranked above each fault


def test_no_fault_is_an_error():
    with pytest.raises(ValueError, match="no fault"):
        ranking_report(SCORES, np.zeros(10, bool))
