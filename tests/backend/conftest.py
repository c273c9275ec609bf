"""Fixtures for the backend tests: captured Label Studio requests, the project's one fake Label
Studio answering at the HTTP level (through ``responses``), a small fake ranker with
SuspicionRanker's interface, the app."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import responses
from PIL import Image

from backend.app import create_app
from backend.config import Config
from scripts.fake_label_studio import FakeLabelStudio

PAYLOADS = Path(__file__).resolve().parents[1] / "fixtures" / "ls-payloads"
LS = "http://ls.test"
CONFIG_XML = ('<View><Image name="image" value="$image"/><Choices name="label" toName="image">'
              '<Choice value="0"/><Choice value="1"/><Choice value="2"/></Choices></View>')


def payload(name: str) -> dict:
    """A captured request: ``{method, path, headers, body}``."""
    return json.loads((PAYLOADS / name).read_text())


class FakeRanker:
    """SuspicionRanker's interface on trivial math: score = distance of the image mean from the
    mean of its labeled class, scaled to [0, 1]; verdicts move faults up and clean items down."""

    instances = 0
    devices: list = []  # the device each fit was asked to use

    def __init__(self, scores, predicted, num_classes, input_shape, method):
        self.base = np.asarray(scores, dtype=np.float64)
        self.scores = self.base.copy()
        self.predicted = np.asarray(predicted, dtype=np.int64)
        self.num_classes, self.input_shape, self.method = num_classes, tuple(input_shape), method
        self.verdicts: dict[int, bool] = {}
        self.centers = None

    @property
    def verdict_count(self):
        return len(self.verdicts)

    @classmethod
    def fit(cls, x, y, *, num_classes, method="dfaulo", seed=0, epochs=None, progress=False,
            device="cpu"):
        FakeRanker.instances += 1
        FakeRanker.devices.append(device)
        x = np.asarray(x, dtype=np.float32)
        y = np.asarray(y)
        means = x.reshape(len(x), -1).mean(axis=1)
        centers = np.array([means[y == c].mean() if np.any(y == c) else 0.5 for c in range(num_classes)])
        predicted = np.abs(means[:, None] - centers[None]).argmin(axis=1)
        scores = np.clip(np.abs(means - centers[y]) * 2, 0, 1)
        r = cls(scores, predicted, num_classes, x.shape[1:], method)
        r.centers = centers
        return r

    def update(self, indices, is_fault):
        for i, f in zip(indices, is_fault):
            self.verdicts[int(i)] = bool(f)
        faults = sum(self.verdicts.values())
        self.scores = np.clip(self.base * (0.5 + 0.1 * faults), 0, 1)
        return self.scores

    def score_new(self, x, y):
        means = np.asarray(x).reshape(len(x), -1).mean(axis=1)
        predicted = np.abs(means[:, None] - self.centers[None]).argmin(axis=1)
        return np.clip(np.abs(means - self.centers[np.asarray(y)]) * 2, 0, 1), predicted

    def save(self, directory):
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        np.savez(d / "fake.npz", base=self.base, predicted=self.predicted, centers=self.centers,
                 shape=np.array(self.input_shape))
        (d / "meta.json").write_text(json.dumps({"k": self.num_classes, "method": self.method}))

    @classmethod
    def load(cls, directory):
        d = Path(directory)
        z = np.load(d / "fake.npz")
        meta = json.loads((d / "meta.json").read_text())
        if meta.get("format", 1) != 1:
            raise ValueError(f"{d} holds a ranker of format {meta['format']}, expected 1")
        r = cls(z["base"], z["predicted"], meta["k"], z["shape"], meta["method"])
        r.centers = z["centers"]
        return r


def png(value: int, *, mode: str = "L", size: int = 8) -> bytes:
    img = Image.new(mode, (size, size), value if mode == "L" else (value, value, value))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


class ProjectFake(FakeLabelStudio):
    """The one fake Label Studio (``scripts/fake_label_studio.py``) with project 1 (``CONFIG_XML``)
    made, and shortcuts for the backend tests: tasks with a gray PNG, the project's version."""

    def __init__(self):
        super().__init__(LS, token="legacy-token-123")
        self.project = self.create_project("backend tests", CONFIG_XML)["id"]

    def add_task(self, tid: int, *, label: str | None, value: int, image: bytes | None = None,
                 url: str | None = None) -> dict:
        url = url or f"/data/upload/{self.project}/img{tid}.png"
        self.images[url] = image if image is not None else png(value)
        task = self.create_task(self.project, {"image": url}, task_id=tid)
        if label is not None:
            self.annotate(tid, label, ann_id=1000 + tid, ground_truth=True)
        return task

    @property
    def model_version(self) -> str | None:
        return self.projects[self.project]["model_version"] or None

    def current(self) -> dict[int, float]:
        return self.current_scores(self.project)

    @property
    def import_calls(self) -> int:
        """How many ``import/predictions`` requests the project got."""
        return len(self.calls_to("POST", f"/api/projects/{self.project}/import/predictions"))


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def fake_ls(rsps):
    fake = ProjectFake()
    fake.register(rsps)
    return fake


def make_config(tmp_path, **overrides) -> Config:
    base = dict(model_dir=str(tmp_path / "models"), label_studio_url=LS,
                label_studio_api_key="legacy-token-123", ranker_cls=FakeRanker, verdict_batch=3,
                verdict_quiet_seconds=0.3, log_level="WARNING")
    base.update(overrides)
    return Config(**base)


@pytest.fixture
def make_app(tmp_path, rsps):
    apps = []

    def build(**overrides):
        app = create_app(make_config(tmp_path, **overrides))
        app.testing = True
        apps.append(app)
        return app
    yield build
    for app in apps:
        app.extensions["suspicion"].stop()


@pytest.fixture
def app(make_app, fake_ls):
    """An app next to the fake Label Studio (which has project 1, so /setup can confirm it)."""
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


def seed_project(fake_ls, *, n: int = 12, flipped=(3,)) -> None:
    """``n`` labeled gray tasks in three classes (dark, mid, bright); ``flipped`` ones carry a
    wrong label (so the fake ranker scores them high)."""
    values = {"0": 20, "1": 128, "2": 235}
    for tid in range(1, n + 1):
        true = str(tid % 3)
        label = str((tid + 1) % 3) if tid in flipped else true
        fake_ls.add_task(tid, label=label, value=values[true])


def wait_for(predicate, timeout: float = 10.0) -> bool:
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def h():
    """Helpers for test modules (conftest is not importable under --import-mode=importlib)."""
    from types import SimpleNamespace
    return SimpleNamespace(payload=payload, seed=seed_project, wait_for=wait_for, png=png, LS=LS,
                           FakeRanker=FakeRanker, CONFIG_XML=CONFIG_XML, make_config=make_config)
