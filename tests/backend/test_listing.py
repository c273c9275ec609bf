"""The training listing (``LabelStudioClient.list_tasks_for_training``) against the one fake
Label Studio: one export snapshot, deleted after use; the task API when snapshots are missing,
fail, or the tasks hold cloud storage URIs."""
from __future__ import annotations

import json

import responses as r

from backend.ls_client import LabelStudioClient


def seed(fake, *, image: str = "/data/local-files/?d=a/{i}.png") -> None:
    fake.create_project("p", CONFIG, project_id=1)
    for i in range(1, 6):
        fake.create_task(1, {"image": image.format(i=i)}, task_id=i)
        fake.annotate(i, "0" if i % 2 else "1", updated_at=f"2026-01-0{i}T00:00:00Z")
    fake.annotate(5, "1", updated_at="2026-02-01T00:00:00Z")  # a second, newer annotation


CONFIG = ('<View><Image name="image" value="$image"/><Choices name="label" toName="image">'
          '<Choice value="0"/><Choice value="1"/></Choices></View>')


def test_one_snapshot_gives_every_task_with_its_annotations_and_is_deleted(fake_ls, h):
    seed(fake_ls)
    tasks = LabelStudioClient(h.LS, "legacy-token-123").list_tasks_for_training(1)
    assert sorted(t["id"] for t in tasks) == [1, 2, 3, 4, 5]
    by_id = {t["id"]: t for t in tasks}
    assert by_id[2]["data"] == {"image": "/data/local-files/?d=a/2.png"}
    assert [a["updated_at"] for a in by_id[5]["annotations"]] == ["2026-01-05T00:00:00Z",
                                                                   "2026-02-01T00:00:00Z"]
    assert not fake_ls.calls_to("GET", "/api/tasks")  # no page of the task API
    assert len(fake_ls.calls_to("POST", "/api/projects/1/exports/")) == 1
    assert fake_ls.exports == {}  # the snapshot is deleted


def test_without_snapshots_the_task_api_is_listed(fake_ls, h):
    seed(fake_ls)
    fake_ls.snapshot_exports = False
    tasks = LabelStudioClient(h.LS, "legacy-token-123").list_tasks_for_training(1)
    assert sorted(t["id"] for t in tasks) == [1, 2, 3, 4, 5]
    assert all(t["annotations"] for t in tasks)
    assert fake_ls.calls_to("GET", "/api/tasks")


def test_cloud_storage_uris_are_listed_by_the_task_api(fake_ls, h):
    """An export keeps ``s3://`` URIs as stored; only the task API resolves them."""
    seed(fake_ls, image="s3://bucket/{i}.png")
    tasks = LabelStudioClient(h.LS, "legacy-token-123").list_tasks_for_training(1)
    assert sorted(t["id"] for t in tasks) == [1, 2, 3, 4, 5]
    assert fake_ls.calls_to("GET", "/api/tasks") and fake_ls.exports == {}


def test_a_failed_snapshot_falls_back_and_is_deleted(rsps, h):
    deleted = []
    rsps.add(r.POST, f"{h.LS}/api/projects/1/exports/", json={"id": 7, "status": "in_progress"}, status=201)
    rsps.add(r.GET, f"{h.LS}/api/projects/1/exports/7", json={"id": 7, "status": "failed"})
    rsps.add_callback(r.DELETE, f"{h.LS}/api/projects/1/exports/7",
                      callback=lambda req: (deleted.append(7), (204, {}, b""))[1])
    rsps.add(r.GET, f"{h.LS}/api/tasks", json={"tasks": [{"id": 1, "data": {}, "annotations": []}],
                                               "total": 1})
    tasks = LabelStudioClient(h.LS, "tok").list_tasks_for_training(1, poll=0.01)
    assert [t["id"] for t in tasks] == [1] and deleted == [7]
    assert json.loads(rsps.calls[0].request.body)["annotation_filter_options"]["skipped"] is True
