"""scripts/bench_ls_writes.py against the fake Label Studio: every plan's predictions arrive, the
in-place change reaches the prediction, the probe versions are deleted at the end."""
from __future__ import annotations

import pytest

from backend.labels import label_config
from backend.ls_client import LabelStudioClient
from scripts import bench_ls_writes
from scripts.fake_label_studio import TOKEN


def test_each_plan_imports_its_predictions_and_nothing_of_them_is_left(fake):
    pid = fake.create_project("p", label_config(["a", "b"]))["id"]
    for i in range(12):
        fake.annotate(fake.create_task(pid, {"image": f"/data/{i}.png"})["id"], "a")
    figures = bench_ls_writes.run(LabelStudioClient(fake.url, TOKEN), pid, per_plan=10, patches=3)
    assert [(p["batch"], p["concurrent"], p["predictions"]) for p in figures["imports"]] == [
        (b, w, 10) for b, w in bench_ls_writes.PLANS]
    imported = fake.calls_to("POST", f"/api/projects/{pid}/import/predictions")
    assert len(imported) == sum(-(-10 // b) for b, _ in bench_ls_writes.PLANS)  # batches as planned
    assert figures["patch_one_prediction"]["count"] == 3
    assert len(fake.calls_to("PATCH", "/api/predictions/1")) == 1
    assert figures["delete_model_version"]["predictions"] == 10 * len(bench_ls_writes.PLANS)
    assert fake.predictions == []


def test_a_project_smaller_than_a_plan_is_refused(fake):
    pid = fake.create_project("p", label_config(["a", "b"]))["id"]
    fake.annotate(fake.create_task(pid, {"image": "/data/0.png"})["id"], "a")
    with pytest.raises(ValueError, match="fewer than --per-plan"):
        bench_ls_writes.run(LabelStudioClient(fake.url, TOKEN), pid, per_plan=10, patches=3)
