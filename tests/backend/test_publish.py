"""Publishing a new version: the top of the new order reaches Label Studio first, old
predictions go in bounded chunks, and at the end every task has exactly one prediction."""
from __future__ import annotations

from backend.labels import parse_label_config
from backend.ls_client import LabelStudioClient
from backend.publish import publish_all
from backend.store import Store
from backend.tasks import TaskRow


def _rows(n, *, shift=0.0):
    return [TaskRow(t, f"/data/upload/1/img{t}.png", "0", item_index=t - 1,
                    score=round(((t * 7919) % 97) / 97 + shift, 4) % 1.0, predicted=t % 3)
            for t in range(1, n + 1)]


def test_the_top_first_then_the_rest_in_bounded_chunks(tmp_path, fake_ls, h):
    for t in range(1, 21):
        fake_ls.add_task(t, label="0", value=20)
    spec = parse_label_config(h.CONFIG_XML)
    store = Store(tmp_path / "s.sqlite3")
    client = LabelStudioClient(h.LS, "legacy-token-123")
    store.replace_tasks(_rows(20))
    first = publish_all(store, client, 1, spec=spec, method="m", kind="train", batch=6, top_first=5)
    assert first["pushed"] == 20 and first["top_first"] == 5
    store.replace_tasks(_rows(20, shift=0.37))  # a refit reorders everything
    seen, before = {}, len(fake_ls.calls_to("POST", "/api/dm/actions"))
    patch = fake_ls._patch_project

    def spy(request, pid):  # what the Data Manager shows the moment the project switches
        answer = patch(request, pid)
        seen.update(fake_ls.current_scores(pid))
        return answer
    fake_ls._patch_project = spy
    report = publish_all(store, client, 1, spec=spec, method="m", kind="feedback", batch=6, top_first=5,
                         delete_chunk=4)
    new = {r.task_id: r.score for r in store.scored_tasks()}
    top5 = sorted(new, key=lambda t: (-new[t], t))[:5]
    assert sorted(seen) == sorted(top5)  # only new scores, and exactly the new top, on the switch
    assert all(seen[t] == new[t] for t in top5)
    assert report["replaced_old"] == 15 and report["deleted_old"] == 5  # the rest's, then the top's
    # 3 batches of 6, 6, 3 tasks, their old predictions deleted at most 4 tasks per action
    assert len(fake_ls.calls_to("POST", "/api/dm/actions")) - before == 2 + 2 + 1  # chunks of at most 6 tasks, never a whole version at once
    assert fake_ls.current_scores(1) == new
    assert len(fake_ls.predictions) == 20  # one prediction per task
    assert store.versions()[0]["pushed"] == 20 and store.versions()[0]["state"] == "current"
