"""The benchmark (scripts/benchmark.py): scenario generator, reference peers, reviewer loop, summary."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from benchmark import markdown, review_loop, summarize  # noqa: E402
from reference_peers import PEERS, reference_peers  # noqa: E402
from scenarios import KINDS, RATE_RANGE, SOURCE_LIMITS, draw_scenario, draw_scenarios, realize  # noqa: E402

from detection.metrics import ranking_report  # noqa: E402
from detection.noise import FaultPart, plant_faults  # noqa: E402
from detection.sources import load_source  # noqa: E402

CLASS_COUNTS = {"mnist": [500] * 10, "fashion": [1000] * 10,
                "digits": [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]}


class Recorder:
    """A ranker stand-in: fixed scores until told, records the verdict batches it gets."""

    def __init__(self, scores, after=None):
        self.scores = np.asarray(scores, dtype=float)
        self.after = after
        self.batches = []

    def update(self, idx, fault):
        self.batches.append((list(idx), list(fault)))
        if self.after is not None:
            self.scores = self.after.copy()


def test_review_loop_inspects_top_batches_then_the_rest_by_final_scores():
    n = 20
    scores = np.arange(n, dtype=float)[::-1]            # item 0 most suspicious
    final = np.arange(n, dtype=float)                    # after the first verdicts: item 19 first
    fault = np.zeros(n, bool)
    fault[[0, 19]] = True
    ranker = Recorder(scores, after=final)
    eff = review_loop(ranker, fault, batch=2, budget=0.2)   # 4 reviews: 2 rounds of 2
    order = list(np.argsort(-eff, kind="stable"))
    assert ranker.batches[0] == ([0, 1], [True, False])
    assert ranker.batches[1][0] == [19, 18]              # second round follows the refit scores
    assert order[:4] == [0, 1, 19, 18]                    # inspected in review order
    assert order[4:6] == [17, 16]                        # then the rest by the final scores
    assert sorted(order) == list(range(n))


# ---------------------------------------------------------------- scenario generator
def test_scenarios_are_seeded_and_do_not_depend_on_how_many_are_drawn():
    five = draw_scenarios("dev", 5)
    assert five == [draw_scenario("dev", i) for i in range(5)] == draw_scenarios("dev", 9)[:5]
    assert draw_scenarios("test", 3, start=24) == [draw_scenario("test", i) for i in (24, 25, 26)]
    with pytest.raises(ValueError, match="start"):
        draw_scenarios("test", 3, start=-1)
    assert [s.seed for s in draw_scenarios("test", 30)] != [s.seed for s in draw_scenarios("dev", 30)]
    assert [s.parts for s in draw_scenarios("test", 30)] != [s.parts for s in draw_scenarios("dev", 30)]
    only = draw_scenarios("dev", 4, sources=["digits"])
    assert all(s.source == "digits" for s in only) and only[0] == next(
        draw_scenario("dev", i) for i in range(100) if draw_scenario("dev", i).source == "digits")


@pytest.mark.parametrize("draw", ["dev", "test"])
def test_a_draw_covers_every_source_kind_and_mixture_within_the_rate_range(draw):
    scenarios = draw_scenarios(draw, 150)
    assert {s.source for s in scenarios} == set(SOURCE_LIMITS)
    assert {p.kind for s in scenarios for p in s.parts} == set(KINDS)
    assert {p.origin for s in scenarios for p in s.parts if p.kind == "ood"} == {"photo", "noise", "pattern", "other"}
    assert any(len({p.kind for p in s.parts}) == 2 for s in scenarios)              # mixtures of kinds
    assert any(sum(p.kind == "ood" for p in s.parts) == 2 for s in scenarios)     # outliers of two origins
    assert all(RATE_RANGE[0] - 1e-9 <= s.rate <= RATE_RANGE[1] + 1e-9 for s in scenarios)


@pytest.mark.parametrize("draw", ["dev", "test"])
def test_every_scenarios_label_faults_plant_with_exact_ground_truth(draw):
    """Label parts come first, so planting them alone is exactly what the benchmark plants."""
    for s in draw_scenarios(draw, 150):
        y = np.repeat(np.arange(10), CLASS_COUNTS[s.source])
        label_parts = [p for p in s.parts if p.kind != "ood"]
        if not label_parts:
            continue
        p = plant_faults(np.zeros((len(y), 1, 1, 1), np.float32), y, label_parts, num_classes=10, seed=s.seed)
        assert ((p.labels != y) == p.is_fault).all(), s.name
        for i, part in enumerate(label_parts):
            assert (p.part == i).sum() == round(part.rate * len(y)), s.name


def test_a_realized_scenario_marks_outliers_and_flips_exactly():
    s = next(s for s in draw_scenarios("dev", 200, sources=["digits"])
             if {p.kind for p in s.parts} > {"ood"} and all(p.origin != "other" for p in s.parts))
    images, planted = realize(s)
    clean = load_source("digits", seed=s.seed)
    ood = np.array([p.kind == "ood" for p in s.parts])[np.maximum(planted.part, 0)] & planted.is_fault
    assert ood.any() and (planted.is_fault & ~ood).any()
    assert (np.flatnonzero(images.y != clean.y) == np.flatnonzero(planted.is_fault & ~ood)).all()
    assert (np.flatnonzero((images.x != clean.x).any(axis=(1, 2, 3))) == np.flatnonzero(ood)).all()
    assert (planted.true_labels[ood] == -1).all() and (planted.true_labels[~ood] == clean.y[~ood]).all()
    assert planted.is_fault.sum() == sum(round(p.rate * len(clean)) for p in s.parts)


# ---------------------------------------------------------------- reference peers
@pytest.fixture(scope="module")
def peers_on_digits():
    """600 digits, 8% label flips then 3% noise-blob outliers; every reference peer on them."""
    import torch
    torch.set_num_threads(1)
    d = load_source("digits", limit=600, seed=0)
    p = plant_faults(d.x, d.y, [FaultPart("symmetric", 0.08), FaultPart("ood", 0.03, origin="noise")],
                     num_classes=10, seed=0)
    return p, reference_peers(p.x, p.labels, num_classes=10, seed=0)


def test_reference_peers_rank_planted_flips_above_clean_items(peers_on_digits):
    planted, peers = peers_on_digits
    assert set(peers.scores) == set(PEERS) and peers.reference_seconds > 0
    flips = planted.part == 0
    keep = ~(planted.part == 1)            # flips against clean items, outliers left out
    for name in ("ref-loss", "ref-aum", "ref-cleanlab", "ref-tracin"):
        ap = ranking_report(peers.scores[name][keep], flips[keep])["ap"]
        assert ap > 0.7, (name, ap)        # 8% of the items: random order gives about 0.08


def test_reference_ood_score_ranks_outliers_above_clean_items(peers_on_digits):
    planted, peers = peers_on_digits
    outliers = planted.part == 1
    keep = ~(planted.part == 0)
    rep = ranking_report(peers.scores["ref-ood"][keep], outliers[keep])
    # kNN on 600 items' features: weaker than on thousands, far from random (AP 0.03, AUROC 0.5)
    assert rep["auroc"] > 0.8 and rep["ap"] > 0.2, rep


# ---------------------------------------------------------------- summary and report
def fake_result(index, ap_dfaulo, aps):
    methods = {name: {"ap": ap, "auroc": 0.9, "recall@10%": 0.8, "seconds": 2.0, "cost_x_reference": 2.0}
               for name, ap in aps.items()}
    methods["dfaulo"] = {"ap": ap_dfaulo, "auroc": 0.9, "recall@10%": 0.8, "seconds": 6.0, "cost_x_reference": 3.0}
    best = max(aps, key=aps.get)
    return {"scenario": f"dev#{index} x", "index": index, "items": 100, "faults": 10, "best_peer": best,
            "gap_to_best_peer": ap_dfaulo - aps[best], "gap_to_ref_loss": ap_dfaulo - aps["ref-loss"],
            "methods": methods}


def test_summary_reports_the_worst_gap_to_the_best_peer():
    peers = {name: 0.5 for name in PEERS + ("own-loss", "own-tracin")}
    results = [fake_result(0, 0.9, {**peers, "ref-aum": 0.8}),      # DFauLo ahead by 0.1
               fake_result(1, 0.6, {**peers, "ref-ood": 0.75}),     # behind by 0.15: the worst case
               fake_result(2, 0.7, {**peers, "ref-loss": 0.705})]   # within 0.01
    s = summarize(results)
    assert s["worst_scenario"] == "dev#1 x" and abs(s["worst_gap_to_best_peer"] + 0.15) < 1e-12
    assert abs(s["mean_gap_to_best_peer"] - (0.1 - 0.15 - 0.005) / 3) < 1e-12
    assert s["within_0.01_of_best_peer"] == 2 and abs(s["worst_gap_to_ref_loss"] + 0.005) < 1e-12
    doc = {"draw": "dev", "commit": "abc", "threads": 1, "machine": {"date": "2025-01-01", "cpus": 2},
           "summary": s, "results": results}
    text = markdown(doc)
    assert "**0.750**" in text and "-0.150" in text and "Worst case of DFauLo AP - best peer AP: **-0.150**" in text
    assert s["max_dfaulo_cost_x_reference"] == 3.0 and "channels-last" not in text   # not measured in these


def test_summary_reports_the_cost_against_the_channels_last_reference_where_measured():
    peers = {name: 0.5 for name in PEERS + ("own-loss", "own-tracin")}
    results = [fake_result(0, 0.9, peers), fake_result(1, 0.8, peers)]
    for r, cost in zip(results, (2.5, 3.5)):
        r["methods"]["dfaulo"]["cost_x_reference_channels_last"] = cost
    s = summarize(results)
    assert s["mean_dfaulo_cost_x_reference_channels_last"] == 3.0
    assert s["max_dfaulo_cost_x_reference_channels_last"] == 3.5
    doc = {"draw": "dev", "commit": "abc", "threads": 1, "machine": {"date": "2025-01-01", "cpus": 2},
           "summary": s, "results": results}
    assert "channels-last weights 3.00x (largest 3.50x)" in markdown(doc)


def test_the_test_draw_needs_the_frozen_flag(tmp_path, capsys):
    from benchmark import main
    assert main(["--draw", "test", "--count", "1", "--out", str(tmp_path / "out")]) == 2
    assert "--frozen" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_a_finished_test_draw_is_never_overwritten_and_a_later_start_gets_its_own_file(tmp_path, capsys,
                                                                                     monkeypatch):
    import json

    import benchmark
    from benchmark import result_stem
    monkeypatch.setattr(benchmark, "code_state", lambda: ("abc", False))
    out = tmp_path / "out"
    out.mkdir()
    spent = out / "scenarios-test.json"
    spent.write_text(json.dumps({"draw": "test", "complete": True, "results": []}))
    assert benchmark.main(["--draw", "test", "--count", "1", "--frozen", "--out", str(out)]) == 2
    assert "spent" in capsys.readouterr().err and json.loads(spent.read_text())["complete"]
    assert result_stem("test") == "test" and result_stem("test", 24) == "test-from-24"


def test_shards_merge_into_one_draw_in_draw_order_and_refuse_partial_or_mixed_runs(tmp_path):
    import json

    from benchmark import merge_shards, parse_shard, shard_path
    peers = {name: 0.5 for name in PEERS + ("own-loss", "own-tracin")}
    assert parse_shard("2/3") == (2, 3)
    for bad in ("0/2", "3/2", "x", "1-2"):
        with pytest.raises(ValueError):
            parse_shard(bad)
    head = {"machine": {"date": "2025-01-01", "cpus": 2}, "draw": "test", "commit": "abc", "threads": 1}
    one = {**head, "command": "a", "complete": True, "results": [fake_result(0, 0.9, peers), fake_result(2, 0.4, peers)]}
    two = {**head, "command": "b", "complete": False, "results": [fake_result(1, 0.7, peers)]}
    shard_path(tmp_path, "test", (1, 2)).write_text(json.dumps(one))
    shard_path(tmp_path, "test", (2, 2)).write_text(json.dumps(two))
    with pytest.raises(ValueError, match="has not finished"):
        merge_shards(tmp_path, "test", 2)
    shard_path(tmp_path, "test", (2, 2)).write_text(json.dumps({**two, "complete": True, "commit": "def"}))
    with pytest.raises(ValueError, match="different commits"):
        merge_shards(tmp_path, "test", 2)
    shard_path(tmp_path, "test", (2, 2)).write_text(json.dumps({**two, "complete": True}))
    doc = merge_shards(tmp_path, "test", 2)
    assert [r["index"] for r in doc["results"]] == [0, 1, 2] and doc["summary"]["scenarios"] == 3
    assert doc["summary"]["worst_scenario"] == fake_result(2, 0.4, peers)["scenario"]
    with pytest.raises(ValueError, match="does not exist"):
        merge_shards(tmp_path, "test", 3)
