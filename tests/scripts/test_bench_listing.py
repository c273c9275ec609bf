import pytest

from scripts import bench_listing


def _task(tid, anns):
    return {"id": tid, "data": {"image": f"/data/{tid}.png"}, "annotations": anns}


def _ann(aid, updated, label="a"):
    return {"id": aid, "updated_at": updated, "was_cancelled": False,
            "result": [{"value": {"choices": [label]}}]}


def test_the_newest_annotation_is_the_last_updated():
    got = bench_listing.newest_annotations([_task(1, [_ann(10, "2026-01-01T00:00:00Z"),
                                                      _ann(11, "2026-01-02T00:00:00Z", "b")]),
                                            _task(2, [])])
    assert got[1]["annotation"]["id"] == 11 and got[1]["annotation"]["result"][0]["value"]["choices"] == ["b"]
    assert got[2]["annotation"] is None


def test_completeness_counts_what_a_listing_misses_against_the_reference():
    ref = bench_listing.newest_annotations([_task(1, [_ann(10, "t1")]), _task(2, [_ann(20, "t2")]),
                                            _task(3, [])])
    same = bench_listing.completeness(ref, ref)
    assert same["complete"] and same["labeled_tasks"] == 2
    partial = bench_listing.newest_annotations([{"id": 1, "data": {}, "annotations": [_ann(10, "t0")]}])
    report = bench_listing.completeness(partial, ref)
    assert not report["complete"]
    assert report["missing"] == 1 and report["without_data"] == 1
    # a missing task's annotation counts as missing in every field
    assert report["annotation_fields_missing_or_different"] == {"id": 1, "updated_at": 2, "result": 1,
                                                                 "was_cancelled": 1}


def test_unknown_variants_are_refused_before_any_request():
    with pytest.raises(ValueError, match="unknown listing variants tasks_everything"):
        bench_listing.run(object(), 1, variants=["export_json", "tasks_everything"])
    with pytest.raises(SystemExit):
        bench_listing.main(["--stack", "1000", "--variants", "nope"])
    with pytest.raises(SystemExit):
        bench_listing.main(["--url", "http://127.0.0.1:1"])   # neither a whole address nor --stack
