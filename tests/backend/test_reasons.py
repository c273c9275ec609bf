"""The reason a task is suspect, written into the prediction beside the model's guess."""
from backend.labels import label_config, parse_label_config
from backend.publish import prediction
from backend.reasons import suspect_reason
from backend.tasks import TaskRow

SPEC = parse_label_config(label_config(["0", "1", "2"]))
ROW = TaskRow(task_id=7, image_url="/data/x.png", label="2", score=0.9871, predicted=1)


def test_the_reason_names_the_given_label_the_guess_and_what_the_score_means():
    assert suspect_reason(ROW, spec=SPEC, score=0.9871).startswith(
        "given 2, model says 1; suspicion 0.987 (1 = label most likely wrong")
    agrees = suspect_reason(ROW._replace(predicted=2), spec=SPEC, score=0.4)
    assert agrees.startswith("given 2, model also says 2, but")
    assert suspect_reason(ROW._replace(reviewed=True), spec=SPEC, score=0.0).startswith("reviewed")


def test_the_prediction_carries_the_guess_and_the_reason_only_where_the_config_has_the_box():
    pred = prediction(ROW, spec=SPEC, version="v1")
    assert pred["score"] == 0.9871 and pred["task"] == 7
    guess, reason = pred["result"]
    assert guess["from_name"] == "label" and guess["value"]["choices"] == ["1"]
    assert reason["from_name"] == "suspect_reason" and reason["type"] == "textarea"
    assert reason["value"]["text"][0].startswith("given 2, model says 1")
    plain = parse_label_config(label_config(["0", "1", "2"], reason=False))
    assert [r["from_name"] for r in prediction(ROW, spec=plain, version="v1")["result"]] == ["label"]


def test_the_reason_says_where_the_task_stands_in_its_class():
    from backend.reasons import class_ranks
    rows = [TaskRow(t, f"/{t}.png", "2" if t <= 200 else "1", score=t / 1000, predicted=1)
            for t in range(1, 301)]
    ranks = class_ranks(rows, [r.score for r in rows])
    assert ranks[200] == 1 / 200 and ranks[1] == 1.0 and ranks[300] == 1 / 100
    text = suspect_reason(rows[199], spec=SPEC, score=0.2, class_share=ranks[200])
    assert "model says 1; in the top 0.5% of class 2; suspicion 0.200" in text
    assert "in the top 50% of class 2" in suspect_reason(rows[100], spec=SPEC, score=0.1,
                                                           class_share=ranks[101])
