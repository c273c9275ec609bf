"""Start and stop a local Label Studio and the ML backend (for the demo, the benchmark and the
end-to-end tests). Both listen on 127.0.0.1 only.

Label Studio runs from its own virtualenv (``.venv-ls`` by default; its pins clash with ours) with
the settings a backend on the same machine needs (README, "Limits and troubleshooting"): legacy
API token enabled, local ML backends allowed, Local Files serving under a document root. Update
checks, analytics and Sentry are switched off so nothing leaves the machine.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import requests

REPO = Path(__file__).resolve().parents[1]
LS_VERSION = "1.23.2"


def _die_with_parent() -> None:
    """In the child before exec: its own session (Ctrl-C in the terminal reaches only the parent,
    which stops the group) and SIGTERM when the parent dies (Linux), so a killed test run or demo
    leaves no server behind."""
    os.setsid()
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def label_studio_venv() -> Path:
    """``$LABEL_STUDIO_VENV`` or ``<repo>/.venv-ls``."""
    return Path(os.environ.get("LABEL_STUDIO_VENV") or REPO / ".venv-ls")


def label_studio_bin(venv: Path | None = None) -> Path | None:
    """The ``label-studio`` executable of the venv, or None when it is not installed."""
    exe = (venv or label_studio_venv()) / "bin" / "label-studio"
    return exe if exe.is_file() and os.access(exe, os.X_OK) else None


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen
    log: Path

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, *, timeout: float = 20.0) -> None:
        stop_process(self.process, timeout=timeout)


def stop_process(proc: subprocess.Popen, *, timeout: float = 20.0) -> None:
    """SIGTERM the process group started for ``proc`` (it was started in its own session), then
    SIGKILL after ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def wait_http(url: str, *, timeout: float, proc: subprocess.Popen | None = None,
              headers: Mapping[str, str] | None = None, what: str = "server") -> None:
    """Poll ``url`` until it answers 200; ``RuntimeError`` on timeout or when ``proc`` exits."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before answering {url}")
        try:
            r = requests.get(url, headers=dict(headers or {}), timeout=2)
            if r.status_code == 200:
                return
            last = f"HTTP {r.status_code}"
        except requests.RequestException as exc:
            last = type(exc).__name__
        time.sleep(0.5)
    raise RuntimeError(f"{what} did not answer {url} within {timeout:.0f} s ({last})")


#: Label Studio 1.23.2 settings this project runs Label Studio with (docker-compose.yml too; see
#: docs/backend.md, "Label Studio settings"). The flag turns on the prediction import Label Studio
#: ships switched off: with it, ``import/predictions`` recounts the predictions of the tasks it
#: imported, not of every task of the project (54 s per call of 5,000 at 60,000 tasks otherwise).
LABEL_STUDIO_TUNING = {
    "fflag_fix_back_4620_memory_efficient_predictions_import_08012025_short": "true",
}
#: and on SQLite (Label Studio's default database): ``AZURE_MOUNT_FIX`` makes Label Studio put its
#: SQLite file in WAL mode (label_studio/server.py), where a long read (the training's export
#: snapshot, a minute at 60,000 tasks) no longer holds a reviewer's save until it fails
LABEL_STUDIO_SQLITE_TUNING = {"AZURE_MOUNT_FIX": "true"}


def label_studio_env(*, document_root: Path, base: Mapping[str, str] | None = None,
                     tuned: bool = True) -> dict[str, str]:
    """The environment Label Studio is started with; ``tuned=False`` leaves out
    :data:`LABEL_STUDIO_TUNING` and, on SQLite, :data:`LABEL_STUDIO_SQLITE_TUNING` (Label Studio
    as installed)."""
    env = dict(os.environ if base is None else base)
    for key in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH", "VIRTUAL_ENV"):
        env.pop(key, None)
    env.update({
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "ML_BLOCK_LOCAL_IP": "false",
        "SSRF_PROTECTION_ENABLED": "false",
        "LOCAL_FILES_SERVING_ENABLED": "true",
        "LOCAL_FILES_DOCUMENT_ROOT": str(document_root),
        "LATEST_VERSION_CHECK": "false",
        "COLLECT_ANALYTICS": "false",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
        "SENTRY_RATE": "0",
    })
    if tuned:
        env.update(LABEL_STUDIO_TUNING)
        if env.get("DJANGO_DB", "sqlite") != "default":  # DJANGO_DB=default is PostgreSQL
            env.update(LABEL_STUDIO_SQLITE_TUNING)
    return env


def start_label_studio(*, data_dir: Path, document_root: Path, port: int, username: str,
                       password: str, token: str, log: Path, venv: Path | None = None,
                       timeout: float = 300.0, tuned: bool = True) -> Server:
    """Start Label Studio on 127.0.0.1:``port`` and wait until it serves the API with ``token``.

    The first start on an empty ``data_dir`` runs the migrations (about a minute).
    """
    exe = label_studio_bin(venv)
    if exe is None:
        raise RuntimeError(f"Label Studio is not installed in {venv or label_studio_venv()} "
                           f"(python3 -m venv .venv-ls && .venv-ls/bin/pip install label-studio=={LS_VERSION})")
    if not 5 < len(token) <= 40:
        raise ValueError("the Label Studio user token must have 6 to 40 characters")
    data_dir.mkdir(parents=True, exist_ok=True)
    document_root.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [str(exe), "start", "--no-browser", "--port", str(port), "--internal-host", "127.0.0.1",
           "--data-dir", str(data_dir), "--username", username, "--password", password,
           "--user-token", token]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=label_studio_env(document_root=document_root, tuned=tuned),
                                cwd=str(data_dir), preexec_fn=_die_with_parent)
    server = Server("Label Studio", f"http://127.0.0.1:{port}", proc, log)
    try:
        wait_http(server.url + "/api/current-user/whoami", timeout=timeout, proc=proc,
                  headers={"Authorization": f"Token {token}"}, what="Label Studio")
    except BaseException:
        server.stop()
        raise
    return server


def start_backend(*, port: int, model_dir: Path, label_studio_url: str, api_key: str, log: Path,
                  extra_env: Mapping[str, str] | None = None, dev: bool = False,
                  timeout: float = 60.0) -> Server:
    """Start the ML backend under gunicorn (or ``python -m backend`` with ``dev``) on 127.0.0.1."""
    model_dir.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update({"MODEL_DIR": str(model_dir), "LABEL_STUDIO_URL": label_studio_url,
                "LABEL_STUDIO_API_KEY": api_key, "PYTHONUNBUFFERED": "1"})
    env.update(extra_env or {})
    if dev:
        cmd = [sys.executable, "-m", "backend", "--host", "127.0.0.1", "--port", str(port)]
    else:
        cmd = [sys.executable, "-m", "gunicorn", "--preload", "--bind", f"127.0.0.1:{port}",
               "--workers", "1", "--threads", "8", "--timeout", "0", "backend.wsgi:app"]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=str(REPO), preexec_fn=_die_with_parent)
    server = Server("ML backend", f"http://127.0.0.1:{port}", proc, log)
    try:
        wait_http(server.url + "/health", timeout=timeout, proc=proc, what="ML backend")
    except BaseException:
        server.stop()
        raise
    return server
