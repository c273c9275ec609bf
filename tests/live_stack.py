"""Fixtures that start a real Label Studio 1.23.2 and the ML backend (under gunicorn) on
127.0.0.1 with free ports and temporary data, and stop both at teardown; shared by the
end-to-end tests (``tests/e2e``) and the browser test (``tests/browser``), whose conftests
import them.

Label Studio comes from ``.venv-ls`` (or ``$LABEL_STUDIO_VENV``). When it is missing the tests
are skipped, except under ``CI=true`` where a missing Label Studio is a failure.

``backend_env`` (the backend's extra environment) can be overridden by a conftest.
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from backend.ls_client import LabelStudioClient

from scripts import servers

TOKEN = "e2e0123456789abcdef0123456789abcdef0123"  # legacy token: 6..40 characters
USER, PASSWORD = "e2e@example.com", "e2e-password-1"
SCORED_TIMEOUT = 600.0


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def skip_or_fail(reason: str) -> None:
    """Skip with ``reason``; under ``CI=true`` fail instead (a missing tool is not a pass)."""
    if in_ci():
        pytest.fail("CI=true: " + reason, pytrace=False)
    pytest.skip(reason)


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
        skip_or_fail(f"Label Studio {servers.LS_VERSION} is not installed in "
                     f"{servers.label_studio_venv()} (run `make ls-venv`, or set LABEL_STUDIO_VENV)")
    base = e2e_dir / "label-studio"
    docroot = base / "files"
    server = servers.start_label_studio(
        data_dir=base / "data", document_root=docroot, port=servers.free_port(), username=USER,
        password=PASSWORD, token=TOKEN, log=base / "label-studio.log")
    yield server, docroot
    server.stop()


@pytest.fixture(scope="session")
def backend_env() -> dict[str, str]:
    """Extra environment of the backend (override in a conftest)."""
    return {"VERDICT_BATCH": "1000", "VERDICT_QUIET_SECONDS": "3", "LOG_LEVEL": "INFO"}


@pytest.fixture(scope="session")
def backend(label_studio, e2e_dir, backend_env):
    """The ML backend under gunicorn, talking to ``label_studio`` with the legacy token."""
    ls, _ = label_studio
    base = e2e_dir / "backend"
    server = servers.start_backend(
        port=servers.free_port(), model_dir=base / "models", label_studio_url=ls.url,
        api_key=TOKEN, log=base / "backend.log", extra_env=backend_env)
    yield server
    server.stop()


def make_noisy_sample(out: Path, *, source: str = "mnist", limit: int = 1500, noise: float = 0.1,
                      seed: int = 0) -> Path:
    """``out/train/<given label>/*.png`` + ``out/truth.csv`` with symmetric label noise, made by
    ``scripts/make_noisy_dataset.py``."""
    script = servers.REPO / "scripts" / "make_noisy_dataset.py"
    subprocess.run([sys.executable, str(script), "--source", source, "--out", str(out),
                    "--noise", str(noise), "--kind", "symmetric", "--seed", str(seed),
                    "--limit", str(limit)], check=True, cwd=str(servers.REPO),
                   stdin=subprocess.DEVNULL)
    return out


def read_truth(folder: Path) -> dict[str, dict]:
    with open(folder / "truth.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["is_fault"] = str(r["is_fault"]).strip().lower() in ("1", "true")
    return {r["path"]: r for r in rows}


@pytest.fixture(scope="session")
def sample_size() -> int:
    """Images in ``noisy_sample`` (override in a conftest)."""
    return int(os.environ.get("E2E_IMAGES", "1500"))


@pytest.fixture(scope="session")
def noisy_sample(label_studio, sample_size):
    """A noisy MNIST sample under Label Studio's document root: ``(folder, truth by path)``."""
    _, docroot = label_studio
    folder = make_noisy_sample(docroot / "noisy-mnist", limit=sample_size)
    return folder, read_truth(folder)


# -- reading the stack's state ---------------------------------------------------------------------
def project_state(ls: LabelStudioClient, pid: int) -> tuple[str, dict]:
    version = ls.get(f"/api/projects/{pid}").get("model_version") or ""
    counts = ls.get(f"/api/projects/{pid}/model-versions") or {}
    if isinstance(counts, list):  # some versions answer a list of {model_version, count}
        counts = {c.get("model_version"): c.get("count", 0) for c in counts}
    return version, counts


def wait_all_scored(ls: LabelStudioClient, pid: int, n_tasks: int, *, other_than: str | None = None,
                    backend=None, timeout: float = SCORED_TIMEOUT) -> str:
    """Wait until the project's model_version (different from ``other_than``) has a prediction
    on every task; return that version."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        version, counts = project_state(ls, pid)
        seen = (version, counts)
        if version and version != other_than and counts.get(version, 0) >= n_tasks:
            return version
        if backend is not None and backend.process.poll() is not None:
            pytest.fail(f"the backend exited:\n{backend.log_tail()}")
        time.sleep(2)
    tail = backend.log_tail() if backend is not None else ""
    pytest.fail(f"no model_version scored all {n_tasks} tasks within {timeout:.0f} s "
                f"(project model_version, counts: {seen})\n{tail}")


def backend_status(backend, pid: int) -> dict:
    r = requests.get(f"{backend.url}/status", params={"project": pid}, timeout=10)
    r.raise_for_status()
    return r.json()
