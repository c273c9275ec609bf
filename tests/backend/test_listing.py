"""The training listing against the one fake Label Studio: one export snapshot
(``LabelStudioClient.list_tasks_for_training``), deleted after use; the task API when snapshots
are missing, fail, or the tasks hold cloud storage URIs; on a retrain, only the tasks changed
since the previous listing (``backend.listing``), whole again when tasks were deleted or the label
config changed."""
from __future__ import annotations

import json

import responses as r

from backend.listing import GAP, list_project, remember
from backend.labels import parse_label_config
from backend.ls_client import LabelStudioClient, parse_time
from backend.store import Store


def seed(fake, *, image: str = "/data/local-files/?d=a/{i}.png", more: int = 0) -> None:
    """Tasks 1-5 (task 5 with a second, newer annotation), then ``more`` tasks from 10 on."""
    fake.create_project("p", CONFIG, project_id=1)
    for i in [*range(10, 10 + more), *range(1, 6)]:
        fake.create_task(1, {"image": image.format(i=i)}, task_id=i)
        fake.annotate(i, "0" if i % 2 else "1", updated_at=f"2026-01-{i:02d}T00:00:00Z")
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


def listed(fake, store, *, config=CONFIG):
    """One listing as a training makes it, its rows stored and its mark kept."""
    client = LabelStudioClient("http://ls.test", "legacy-token-123")
    listing = list_project(client, 1, spec=parse_label_config(config), store=store, label_config=config)
    store.replace_tasks(listing.rows)
    remember(store, listing, label_config=config)
    return listing


def test_a_retrain_lists_only_the_tasks_changed_since_and_gets_the_same_rows(fake_ls, tmp_path):
    seed(fake_ls, more=15)
    store = Store(tmp_path / "state.sqlite3")
    first = listed(fake_ls, store)
    assert first.full and first.read == 20 and first.why_full == "no previous listing"
    fake_ls.annotate(2, "0", ann_id=77, updated_at="2026-03-01T00:00:00Z")  # a reviewer's correction
    fake_ls.create_task(1, {"image": "/data/local-files/?d=a/6.png"}, task_id=6)  # a new task
    exports = len(fake_ls.calls_to("POST", "/api/projects/1/exports/"))
    second = listed(fake_ls, store)
    # tasks 2 and 6, and 5: saved within GAP before the first listing began (the fake's clock
    # stands still between changes)
    assert not second.full and second.read == 3
    assert len(fake_ls.calls_to("POST", "/api/projects/1/exports/")) == exports  # no snapshot
    by_id = {r.task_id: r for r in second.rows}
    assert [r.task_id for r in second.rows] == [1, 2, 3, 4, 5, 6, *range(10, 25)]
    assert (by_id[2].label, by_id[2].annotation_id) == ("0", 77)
    assert by_id[6].label is None and by_id[5].label == "1"
    # the same rows as a whole listing of the project as it is now
    whole = list_project(LabelStudioClient("http://ls.test", "legacy-token-123"), 1,
                         spec=parse_label_config(CONFIG), store=Store(tmp_path / "other.sqlite3"),
                         label_config=CONFIG)
    assert whole.full and whole.rows == second.rows
    third = listed(fake_ls, store)
    assert not third.full and third.read == 1 and third.rows == second.rows  # task 6, within GAP


def test_scores_of_the_previous_training_are_not_carried_into_the_listing(fake_ls, tmp_path):
    seed(fake_ls, more=15)
    store = Store(tmp_path / "state.sqlite3")
    listed(fake_ls, store)
    store.update_scores([r._replace(score=0.9, reviewed=True) for r in store.all_tasks().values()])
    rows = listed(fake_ls, store).rows
    assert all(r.score is None and not r.reviewed and r.item_index is None for r in rows)


def test_deleted_tasks_a_changed_label_config_or_many_changes_make_the_listing_whole(fake_ls, tmp_path):
    seed(fake_ls, more=15)
    store = Store(tmp_path / "state.sqlite3")
    listed(fake_ls, store)
    fake_ls.delete_tasks([4])  # no webhook reached the backend: only the count tells
    again = listed(fake_ls, store)
    assert again.full and "Label Studio counts 19" in again.why_full
    assert [r.task_id for r in again.rows] == [1, 2, 3, 5, *range(10, 25)]
    assert not listed(fake_ls, store).full
    for tid in range(10, 16):  # 6 more changed (and 5, within GAP): a snapshot costs less
        fake_ls.annotate(tid, "1")
    many = listed(fake_ls, store)
    assert many.full and many.why_full == "7 of 19 tasks changed since the previous listing"  # +5
    config = CONFIG.replace('<Choice value="1"/>', '<Choice value="1"/><Choice value="2"/>')
    changed = listed(fake_ls, store, config=config)
    assert changed.full and changed.why_full == "the label config changed"


def test_a_label_outside_the_choices_is_an_error_in_stored_rows_too(fake_ls, tmp_path):
    """A row carried over from the previous listing is checked by the same rule as a task read now."""
    seed(fake_ls, more=15)
    store = Store(tmp_path / "state.sqlite3")
    listed(fake_ls, store)
    row = store.all_tasks()[3]
    store.replace_tasks([r if r.task_id != 3 else row._replace(label="cat")
                         for r in store.all_tasks().values()])
    rows = {r.task_id: r for r in listed(fake_ls, store).rows}
    assert rows[3].error == "label 'cat' is not one of the label config's choices"


def test_without_label_studios_clock_the_newest_updated_at_marks_the_listing(fake_ls, tmp_path, monkeypatch):
    """A Label Studio behind a proxy that drops ``Date``: the next listing starts at the newest
    ``updated_at`` listed minus GAP (never later than the listing's start), and misses nothing."""
    original = LabelStudioClient.count_tasks
    monkeypatch.setattr(LabelStudioClient, "count_tasks",
                        lambda self, pid: original(self, pid)._replace(server_time=None))
    seed(fake_ls, more=15)
    store = Store(tmp_path / "state.sqlite3")
    first = listed(fake_ls, store)
    newest = max(t["updated_at"] for t in fake_ls.tasks.values())
    assert first.since == (parse_time(newest) - GAP).isoformat()
    fake_ls.annotate(12, "0", ann_id=99, updated_at="2026-06-01T00:00:00Z")
    second = listed(fake_ls, store)
    assert not second.full and {r.task_id: r.annotation_id for r in second.rows}[12] == 99
    assert not listed(fake_ls, store).full  # nothing changed: the mark stays where it was
