"""The backend end to end with the real detection.pipeline.SuspicionRanker (method "loss", few
epochs) on sklearn's 8x8 digits served as PNGs by the fake Label Studio."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow


def test_real_ranker_trains_publishes_and_learns_from_verdicts(make_app, fake_ls, h):
    from sklearn.datasets import load_digits

    from detection.pipeline import SuspicionRanker as ranker_cls
    digits = load_digits()
    rng = np.random.default_rng(0)
    keep = np.flatnonzero(digits.target < 3)[:240]
    flipped = set(rng.choice(len(keep), size=24, replace=False).tolist())
    for tid, i in enumerate(keep, start=1):
        img = Image.fromarray((digits.images[i] * 255 / 16).astype(np.uint8), mode="L")
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        label = int(digits.target[i])
        if tid - 1 in flipped:
            label = (label + 1) % 3
        fake_ls.add_task(tid, label=str(label), value=0, image=buf.getvalue())
    app = make_app(ranker_cls=ranker_cls, detection_method="loss", train_epochs=3, verdict_batch=2)
    client = app.test_client()
    assert client.post("/setup", json={"project": "1.1", "schema": h.CONFIG_XML}).status_code == 200
    assert client.post("/webhook", json=h.payload("webhook-start-training.json")["body"]).status_code == 200
    model = app.extensions["suspicion"].get(1)
    assert h.wait_for(lambda: fake_ls.model_version is not None and model.worker.idle(), timeout=120), \
        model.status()
    current = fake_ls.current()
    assert len(current) == 240 and all(0 <= s <= 1 for s in current.values())
    scores = np.array([current[t] for t in range(1, 241)])
    is_flip = np.array([t - 1 in flipped for t in range(1, 241)])
    assert scores[is_flip].mean() > scores[~is_flip].mean()
    # two verdicts on the top suspects -> refit, new version, reviewed ones at 0
    top = sorted(current, key=current.get, reverse=True)[:2]
    v1 = fake_ls.model_version
    for k, tid in enumerate(top):
        true = str(digits.target[keep[tid - 1]])
        ann = fake_ls.annotate(tid, true, ann_id=9000 + k, updated_at=f"2026-03-0{k + 1}")
        client.post("/webhook", json={"action": "ANNOTATION_UPDATED", "annotation": ann,
                                      "project": {"id": 1}})
    assert h.wait_for(lambda: fake_ls.model_version != v1 and model.worker.idle(), timeout=60)
    assert all(fake_ls.current()[t] == 0.0 for t in top)
    assert model.ranker().verdict_count == 2
    feedback = model.status()["last_feedback"]
    assert feedback["verdicts"] == 2 and feedback["refit_validation"] == {}   # "loss" learns nothing
