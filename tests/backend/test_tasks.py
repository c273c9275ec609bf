"""The task vocabulary: Label Studio task objects -> TaskRow, the store's round trip, the verdict
replay, and a state file written by the previous schema."""
from __future__ import annotations

import sqlite3

import numpy as np

from backend.labels import parse_label_config
from backend.store import Store
from backend.tasks import TaskRow, Verdict, newest_label, read_tasks, replay_verdicts

SPEC = parse_label_config('<View><Image name="image" value="$image"/><Choices name="label" '
                          'toName="image"><Choice value="cat"/><Choice value="dog"/></Choices></View>')


def _ann(aid, label, updated, **extra):
    return {"id": aid, "updated_at": updated, **extra,
            "result": [{"from_name": "label", "to_name": "image", "type": "choices",
                        "value": {"choices": [label]}}]}


def test_newest_label_takes_the_newest_usable_annotation():
    task = {"id": 1, "annotations": [
        _ann(1, "cat", "2026-01-01"), _ann(3, "dog", "2026-01-03", was_cancelled=True),
        _ann(2, "dog", "2026-01-02"), {"id": 4, "updated_at": "2026-01-09", "result": []}]}
    assert newest_label(task, SPEC) == ("dog", 2, "2026-01-02")
    assert newest_label({"id": 2}, SPEC) == (None, None, None)


def test_read_tasks_has_one_rule_for_labels_outside_the_choices():
    rows = read_tasks([
        {"id": 1, "data": {"image": "/data/1.png"}, "annotations": [_ann(10, "cat", "t")]},
        {"id": 2, "data": {"image": "/data/2.png"}, "annotations": [_ann(11, "horse", "t")]},
        {"id": 3, "data": {}, "annotations": [_ann(12, "dog", "t")]},
        {"id": 4, "data": {"image": "/data/4.png"}},
    ], SPEC)
    assert rows[0] == TaskRow(task_id=1, image_url="/data/1.png", label="cat", annotation_id=10,
                              annotated_at="t")
    assert "not one of the label config's choices" in rows[1].error and rows[1].label == "horse"
    assert "no image" in rows[2].error
    assert rows[3].label is None and rows[3].error is None


def test_store_round_trips_task_rows(tmp_path):
    store = Store(tmp_path / "s.sqlite3")
    rows = [TaskRow(1, "/a.png", "cat", 10, "t1", item_index=0, score=0.25, predicted=1),
            TaskRow(2, "/b.png", None, score=0.0, predicted=0),
            TaskRow(3, None, "dog", error="task has no image")]
    store.replace_tasks(rows)
    assert store.scored_tasks() == rows[:2]
    assert store.task(3) == rows[2] and store.task(4) is None
    assert store.lookup([1, 3, 9]) == {1: rows[0], 3: rows[2]}
    store.update_scores([rows[0]._replace(score=0.5, reviewed=True, label="ignored")])
    assert store.task(1) == rows[0]._replace(score=0.5, reviewed=True)
    store.add_tasks([rows[2]._replace(score=0.9, predicted=1, error=None),
                     rows[0]._replace(score=0.0, item_index=None), TaskRow(5, "/e.png", "cat", score=0.3)])
    assert store.task(3).score == 0.9 and store.task(3).error is None  # an error row is scored
    assert store.task(1) == rows[0]._replace(score=0.5, reviewed=True)  # a scored row is kept
    assert store.counts()["scored"] == 4


class _Ranker:
    def __init__(self):
        self.scores = np.array([0.1, 0.2, 0.3])
        self.seen = None

    def update(self, indices, faults):
        self.seen = dict(zip(indices, faults))
        return self.scores + 0.5


def test_replay_compares_with_the_label_the_ranker_was_fitted_with():
    rows = [TaskRow(1, "/1", "cat", item_index=0, score=0.1, predicted=0),
            TaskRow(2, "/2", "dog", item_index=1, score=0.2, predicted=1),
            TaskRow(3, "/3", "cat", item_index=2, score=0.3, predicted=0),
            TaskRow(4, "/4", None, score=0.0, predicted=1)]
    verdicts = [Verdict(1, 100, "t", "dog"), Verdict(2, 101, "t", "dog"), Verdict(4, 102, "t", "cat"),
                Verdict(99, 103, "t", "cat")]
    ranker = _Ranker()
    out, reached = replay_verdicts(ranker, rows, verdicts)
    assert reached == 2 and ranker.seen == {0: True, 1: False}
    assert [r.score for r in out] == [0.6, 0.7, 0.8, 0.0]
    assert [r.reviewed for r in out] == [True, True, False, True]


def test_a_state_file_of_the_previous_schema_is_migrated(tmp_path):
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE tasks (task_id INTEGER PRIMARY KEY, item_index INTEGER, image_url TEXT,
            label TEXT, score REAL, predicted INTEGER, reviewed INTEGER NOT NULL DEFAULT 0, error TEXT);
        CREATE TABLE verdicts (id INTEGER PRIMARY KEY AUTOINCREMENT, task_id INTEGER NOT NULL,
            annotation_id INTEGER NOT NULL, updated_at TEXT NOT NULL, label TEXT,
            is_fault INTEGER NOT NULL, applied INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL,
            UNIQUE(task_id, annotation_id, updated_at));
        INSERT INTO tasks VALUES (7, 0, '/7.png', 'cat', 0.4, 1, 0, NULL);
        INSERT INTO verdicts(task_id, annotation_id, updated_at, label, is_fault, created)
            VALUES (7, 70, 't', 'dog', 1, 0);
    """)
    db.commit()
    db.close()
    store = Store(path)
    assert store.task(7) == TaskRow(7, "/7.png", "cat", item_index=0, score=0.4, predicted=1)
    assert store.latest_verdicts() == [Verdict(7, 70, "t", "dog")]
    assert store.add_verdict(Verdict(7, 71, "t2", "cat"))
