"""Publishing a new version: the top of the new order reaches Label Studio first, then the rest,
with nothing deleted on the way; the cleanup then removes the older predictions in short steps
from the bottom of the sort, gives way to other work, resumes, and leaves one prediction per task."""
from __future__ import annotations

from backend.cleanup import STEP_KEY, clean_old_predictions, cleanup_due, step_size
from backend.labels import parse_label_config
from backend.ls_client import LabelStudioClient
from backend.publish import publish_all, sort_order
from backend.store import Store
from backend.tasks import TaskRow


def _rows(n, *, shift=0.0):
    return [TaskRow(t, f"/data/upload/1/img{t}.png", "0", item_index=t - 1,
                    score=round(((t * 7919) % 97) / 97 + shift, 4) % 1.0, predicted=t % 3)
            for t in range(1, n + 1)]


def _setup(tmp_path, fake_ls, h, n=20):
    for t in range(1, n + 1):
        fake_ls.add_task(t, label="0", value=20)
    spec = parse_label_config(h.CONFIG_XML)
    store = Store(tmp_path / "s.sqlite3")
    client = LabelStudioClient(h.LS, "legacy-token-123")
    store.replace_tasks(_rows(n))
    return spec, store, client


def _per_task(fake_ls):
    out = {}
    for p in fake_ls.predictions:
        out.setdefault(p["task"], []).append(p["model_version"])
    return out


def test_the_top_first_then_the_rest_and_nothing_deleted_on_the_way(tmp_path, fake_ls, h):
    spec, store, client = _setup(tmp_path, fake_ls, h)
    first = publish_all(store, client, 1, spec=spec, method="m", kind="train", batch=6, top_first=5)
    assert first["pushed"] == 20 and first["top_first"] == 5 and first["tasks_with_old_predictions"] == 0
    assert store.stale_task_ids() == set() and store.published_version() == first["model_version"]
    store.replace_tasks(_rows(20, shift=0.37))  # a refit reorders everything
    assert store.published_version() is None  # the scores changed: nothing may be re-imported now
    seen = {}
    patch = fake_ls._patch_project

    def spy(request, pid):  # what the Data Manager shows the moment the project switches
        answer = patch(request, pid)
        seen.update(fake_ls.current_scores(pid))
        return answer
    fake_ls._patch_project = spy
    sizes = []
    imported = fake_ls._import_predictions
    fake_ls._import_predictions = lambda request, pid: sizes.append(len(request.get_json())) or imported(request, pid)
    report = publish_all(store, client, 1, spec=spec, method="m", kind="feedback", batch=6, top_first=5)
    new = {r.task_id: r.score for r in store.scored_tasks()}
    top5 = [r.task_id for r in sort_order(store.scored_tasks())[:5]]
    assert sorted(seen) == sorted(top5)  # only new scores, and exactly the new top, on the switch
    assert all(seen[t] == new[t] for t in top5)
    assert fake_ls.calls_to("POST", "/api/dm/actions") == [] and fake_ls.deleted_versions == []
    # the top (5) then the rest in calls of at most 6: 6, 6, 3
    assert sizes == [5, 6, 6, 3]
    assert fake_ls.current_scores(1) == new
    assert report["tasks_with_old_predictions"] == 20 and store.stale_task_ids() == set(new)
    assert store.published_version() == report["model_version"] and cleanup_due(store)


def test_cleanup_goes_bottom_up_in_short_steps_and_leaves_the_top_alone(tmp_path, fake_ls, h):
    spec, store, client = _setup(tmp_path, fake_ls, h)
    v1 = publish_all(store, client, 1, spec=spec, method="m", kind="train", batch=50, top_first=5)
    store.replace_tasks(_rows(20, shift=0.37))
    v2 = publish_all(store, client, 1, spec=spec, method="m", kind="feedback", batch=50, top_first=5)
    order = [r.task_id for r in sort_order(store.scored_tasks())]
    steps = []
    dm_action = fake_ls._dm_action

    def spy(request):
        answer = dm_action(request)
        ids = request.get_json()["selectedItems"]["included"]
        # every task deleted in a step is back on the current version before the next step
        steps.append((list(ids), dict(fake_ls.current_scores(1))))
        return answer
    fake_ls._dm_action = spy
    report = clean_old_predictions(store, client, 1, spec=spec, top_first=5, chunk=4)
    assert [len(ids) for ids, _ in steps] == [4, 4, 4, 3]  # 15 tasks below the top 5, 4 per step
    done = [t for ids, _ in steps for t in ids]
    assert done == list(reversed(order[5:]))  # from the bottom of the sort up, never the top 5
    for (ids, scores_before), later in zip(steps, steps[1:]):
        assert all(t in later[1] for t in ids)  # re-imported right after its delete
    new = {r.task_id: r.score for r in store.scored_tasks()}
    assert fake_ls.current_scores(1) == new  # the sort ends where it was
    per_task = _per_task(fake_ls)
    assert all(per_task[t] == [v2["model_version"]] for t in order[5:])
    assert all(sorted(per_task[t]) == sorted([v1["model_version"], v2["model_version"]]) for t in order[:5])
    # 5 old predictions are left, on the top: more than a step (4), so v1 stays for now
    assert report["tasks_cleaned"] == 15 and report["left_on_top"] == 5 and report["versions_deleted"] == 0
    assert not cleanup_due(store)
    # a later pass with a larger step deletes the small remainder of v1 by version
    store.put("cleaned_version", None)
    again = clean_old_predictions(store, client, 1, spec=spec, top_first=5, chunk=5)
    assert again["versions_deleted"] == 1 and fake_ls.deleted_versions == [v1["model_version"]]
    assert len(fake_ls.predictions) == 20 and store.stale_task_ids() == set()
    assert [v["state"] for v in store.versions()] == ["current", "deleted"]


def test_cleanup_gives_way_to_other_work_and_resumes_after_a_restart(tmp_path, fake_ls, h):
    spec, store, client = _setup(tmp_path, fake_ls, h)
    publish_all(store, client, 1, spec=spec, method="m", kind="train", batch=50, top_first=5)
    store.replace_tasks(_rows(20, shift=0.37))
    v2 = publish_all(store, client, 1, spec=spec, method="m", kind="feedback", batch=50, top_first=5)
    asked = []
    report = clean_old_predictions(store, client, 1, spec=spec, top_first=5, chunk=4,
                                   should_stop=lambda: asked.append(1) or len(asked) >= 2)
    assert report["stopped"] and report["tasks_cleaned"] == 8 and cleanup_due(store)
    assert len(store.stale_task_ids()) == 12  # 7 below the top still to do, and the top 5
    store.close()
    store = Store(tmp_path / "s.sqlite3")  # a restart
    rest = clean_old_predictions(store, client, 1, spec=spec, top_first=5, chunk=4)
    assert rest["tasks_cleaned"] == 7 and not rest["stopped"]
    assert fake_ls.current_scores(1) == {r.task_id: r.score for r in store.scored_tasks()}
    assert all(v == [v2["model_version"]] for t, v in _per_task(fake_ls).items()
               if t not in {r.task_id for r in sort_order(store.scored_tasks())[:5]})


def test_no_cleanup_while_the_scores_are_not_all_pushed(tmp_path, fake_ls, h):
    spec, store, client = _setup(tmp_path, fake_ls, h)
    publish_all(store, client, 1, spec=spec, method="m", kind="train", batch=50, top_first=5)
    store.replace_tasks(_rows(20, shift=0.37))
    publish_all(store, client, 1, spec=spec, method="m", kind="feedback", batch=50, top_first=5)
    store.update_scores([r._replace(score=0.5) for r in store.scored_tasks()[:3]])  # a refit, not yet pushed
    before = list(fake_ls.predictions)
    assert not cleanup_due(store)
    report = clean_old_predictions(store, client, 1, spec=spec, top_first=5, chunk=4)
    assert report["tasks_cleaned"] == 0 and fake_ls.predictions == before


def test_cleanup_never_deletes_predictions_the_backend_did_not_make(tmp_path, fake_ls, h):
    spec, store, client = _setup(tmp_path, fake_ls, h)
    fake_ls.add_predictions(1, [{"task": 7, "score": 0.9, "model_version": "imported-pre-annotations",
                                 "result": []}])
    v1 = publish_all(store, client, 1, spec=spec, method="m", kind="train", batch=50, top_first=5)
    store.replace_tasks(_rows(20, shift=0.37))
    v2 = publish_all(store, client, 1, spec=spec, method="m", kind="feedback", batch=50, top_first=5)
    report = clean_old_predictions(store, client, 1, spec=spec, top_first=5, chunk=4)
    assert report["foreign_versions"] == ["imported-pre-annotations"] and report["versions_deleted"] == 1
    assert fake_ls.calls_to("POST", "/api/dm/actions") == []  # it would have taken task 7's too
    assert fake_ls.deleted_versions == [v1["model_version"]]
    assert sorted(_per_task(fake_ls)[7]) == sorted(["imported-pre-annotations", v2["model_version"]])
    assert all(v == [v2["model_version"]] for t, v in _per_task(fake_ls).items() if t != 7)
    assert not cleanup_due(store)


def test_cleanup_steps_shrink_when_label_studio_is_slow_and_the_next_pass_keeps_the_size(tmp_path, fake_ls, h):
    """A step of 8 tasks that takes 8 s (1 s per task, on a clock the test drives) is followed by
    steps of 2 tasks (a 2 s target); the size is kept for the next pass, whose first step would
    otherwise take the whole chunk again (at 60,000 tasks on PostgreSQL: 12 s that a verdict
    batch waits for). The size is written to the store when it changes, not after every step,
    and the reports' seconds are read from the same clock."""
    spec, store, client = _setup(tmp_path, fake_ls, h)
    publish_all(store, client, 1, spec=spec, method="m", kind="train", batch=50, top_first=5)
    store.replace_tasks(_rows(20, shift=0.37))
    publish_all(store, client, 1, spec=spec, method="m", kind="feedback", batch=50, top_first=5)
    sizes, now = [], [0.0]
    dm_action = fake_ls._dm_action

    def slow(request):
        ids = request.get_json()["selectedItems"]["included"]
        sizes.append(len(ids))
        now[0] += 1.0 * len(ids)
        return dm_action(request)
    fake_ls._dm_action = slow
    written, put = [], store.put

    def counted_put(key, value):
        if key == STEP_KEY:
            written.append(value)
        put(key, value)
    store.put = counted_put
    first = clean_old_predictions(store, client, 1, spec=spec, top_first=5, chunk=8, smallest=2,
                                  step_seconds=2.0, clock=lambda: now[0],
                                  should_stop=lambda: len(sizes) >= 3)
    assert sizes == [8, 2, 2] and first["stopped"] and first["tasks_cleaned"] == 12
    assert first["seconds"] == 12.0 and written == [2]
    rest = clean_old_predictions(store, client, 1, spec=spec, top_first=5, chunk=8, smallest=2,
                                 step_seconds=2.0, clock=lambda: now[0])
    assert sizes == [8, 2, 2, 2, 1] and rest["tasks_cleaned"] == 3 and not rest["stopped"]
    assert rest["seconds"] == 3.0 and written == [2] and store.get(STEP_KEY) == 2
    assert fake_ls.current_scores(1) == {r.task_id: r.score for r in store.scored_tasks()}
    assert step_size(0.5, 100) == 100 and step_size(12.0, 100) == 16 and step_size(60.0, 100) == 10


def test_no_cleanup_while_a_reviewers_verdicts_wait_to_be_applied(tmp_path, fake_ls, h):
    """A reviewer at work: their verdicts will publish a new version soon, so the cleanup waits
    (it would otherwise restart, and sort every task, after each save's webhook)."""
    from backend.tasks import Verdict
    spec, store, client = _setup(tmp_path, fake_ls, h)
    publish_all(store, client, 1, spec=spec, method="m", kind="train", batch=50, top_first=5)
    store.replace_tasks(_rows(20, shift=0.37))
    publish_all(store, client, 1, spec=spec, method="m", kind="feedback", batch=50, top_first=5)
    assert cleanup_due(store)
    store.add_verdict(Verdict(task_id=3, annotation_id=103, updated_at="2026-12-03T10:00:00Z", label="1"))
    assert not cleanup_due(store)
    store.mark_verdicts_applied()
    assert cleanup_due(store)
