"""Fixtures for the backend tests: captured Label Studio requests, a fake Label Studio API at the
HTTP level (``responses``), a small fake ranker with SuspicionRanker's interface, the app."""
from __future__ import annotations

import io
import json
import re
import threading
from pathlib import Path

import numpy as np
import pytest
import responses
from PIL import Image

from backend.app import create_app
from backend.config import Config

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
    def fit(cls, x, y, *, num_classes, method="dfaulo", seed=0, epochs=None, progress=False):
        FakeRanker.instances += 1
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


class FakeLabelStudio:
    """Label Studio's API for one project, faked with ``responses`` at the HTTP level."""

    def __init__(self, rsps: responses.RequestsMock, *, project: int = 1, token: str = "legacy-token-123"):
        self.rsps, self.project, self.token = rsps, project, token
        self.tasks: dict[int, dict] = {}
        self.annotations: dict[int, dict] = {}
        self.images: dict[str, bytes] = {}
        self.predictions: list[dict] = []
        self.model_version: str | None = None
        self.deleted_versions: list[str] = []
        self.import_calls = 0
        self.drop_scores_outside = True
        self.lock = threading.Lock()
        self.auth_seen: list[str] = []
        self._register()

    # -- data -------------------------------------------------------------------------------------
    def add_task(self, tid: int, *, label: str | None, value: int, image: bytes | None = None,
                 url: str | None = None) -> dict:
        url = url or f"/data/upload/{self.project}/img{tid}.png"
        self.images[url] = image if image is not None else png(value)
        task = {"id": tid, "data": {"image": url}, "project": self.project, "annotations": []}
        self.tasks[tid] = task
        if label is not None:
            self.annotate(tid, label, ann_id=1000 + tid, ground_truth=True)
        return task

    def annotate(self, tid: int, label: str, *, ann_id: int, ground_truth: bool = False,
                 updated_at: str = "2026-01-01T00:00:00Z") -> dict:
        ann = {"id": ann_id, "task": tid, "project": self.project, "was_cancelled": False,
               "ground_truth": ground_truth, "updated_at": updated_at, "created_at": updated_at,
               "result": [{"from_name": "label", "to_name": "image", "type": "choices",
                           "value": {"choices": [label]}}]}
        self.annotations[ann_id] = ann
        task = self.tasks[tid]
        task["annotations"] = [a for a in task["annotations"] if a["id"] != ann_id] + [ann]
        return ann

    def current(self) -> dict[int, float]:
        """``{task: score}`` of predictions of the project's current model_version."""
        return {p["task"]: p["score"] for p in self.predictions if p["model_version"] == self.model_version}

    # -- HTTP -------------------------------------------------------------------------------------
    def _auth_ok(self, request) -> bool:
        header = request.headers.get("Authorization", "")
        self.auth_seen.append(header)
        return header == f"Token {self.token}"

    def _register(self):
        r = self.rsps
        r.add_callback(responses.GET, f"{LS}/api/tasks", callback=self._list)
        r.add_callback(responses.GET, re.compile(rf"{LS}/api/tasks/(\d+)"), callback=self._task)
        r.add_callback(responses.GET, re.compile(rf"{LS}/api/annotations/(\d+)"), callback=self._annotation)
        r.add_callback(responses.GET, re.compile(rf"{LS}/data/.*"), callback=self._media)
        r.add_callback(responses.POST, re.compile(rf"{LS}/api/projects/\d+/import/predictions"),
                       callback=self._import)
        r.add_callback(responses.PATCH, re.compile(rf"{LS}/api/projects/\d+$"), callback=self._patch)
        r.add_callback(responses.DELETE, re.compile(rf"{LS}/api/projects/\d+/model-versions/"),
                       callback=self._delete_version)

    def _list(self, request):
        if not self._auth_ok(request):
            return 401, {}, json.dumps({"detail": "no auth"})
        from urllib.parse import parse_qs, urlsplit
        q = parse_qs(urlsplit(request.url).query)
        assert q["fields"] == ["all"] and q["project"] == [str(self.project)]
        page, size = int(q["page"][0]), int(q["page_size"][0])
        tasks = [self.tasks[k] for k in sorted(self.tasks)]
        chunk = tasks[(page - 1) * size: page * size]
        if not chunk and page > 1:
            return 404, {}, json.dumps({"detail": "Invalid page."})
        return 200, {}, json.dumps({"tasks": chunk, "total": len(tasks), "total_annotations": 0,
                                    "total_predictions": 0})

    def _task(self, request):
        if not self._auth_ok(request):
            return 401, {}, "{}"
        tid = int(request.url.rstrip("/").split("/")[-1].split("?")[0])
        if tid not in self.tasks:
            return 404, {}, json.dumps({"detail": "Not found."})
        return 200, {}, json.dumps(self.tasks[tid])

    def _annotation(self, request):
        if not self._auth_ok(request):
            return 401, {}, "{}"
        aid = int(request.url.rstrip("/").split("/")[-1])
        if aid not in self.annotations:
            return 404, {}, json.dumps({"detail": "Not found."})
        return 200, {}, json.dumps(self.annotations[aid])

    def _media(self, request):
        if not self._auth_ok(request):
            return 401, {}, json.dumps({"detail": "Authentication credentials were not provided."})
        path = request.url[len(LS):]
        if path not in self.images:
            return 404, {}, "not found"
        return 200, {"Content-Type": "image/png"}, self.images[path]

    def _import(self, request):
        if not self._auth_ok(request):
            return 401, {}, "{}"
        items = json.loads(request.body)
        ok = [p for p in items if not self.drop_scores_outside or 0 <= p["score"] <= 1]
        with self.lock:
            self.import_calls += 1
            self.predictions.extend(ok)
        return 201, {}, json.dumps({"created": len(ok)})

    def _patch(self, request):
        if not self._auth_ok(request):
            return 401, {}, "{}"
        version = json.loads(request.body)["model_version"]
        if not any(p["model_version"] == version for p in self.predictions):
            return 400, {}, json.dumps({"model_version": ["no predictions of this version"]})
        self.model_version = version
        return 200, {}, json.dumps({"id": self.project, "model_version": version})

    def _delete_version(self, request):
        if not self._auth_ok(request):
            return 401, {}, "{}"
        version = json.loads(request.body)["model_version"]
        with self.lock:
            before = len(self.predictions)
            self.predictions = [p for p in self.predictions if p["model_version"] != version]
            self.deleted_versions.append(version)
            n = before - len(self.predictions)
        return 200, {}, json.dumps({"deleted_predictions": n})


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def fake_ls(rsps):
    return FakeLabelStudio(rsps)


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
def app(make_app):
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
