"""The one-command demo (``make demo``): Label Studio + the backend on localhost, a noisy MNIST
sample imported and ranked. Ctrl-C stops everything it started.

Everything lives under ``.demo/`` (Label Studio's SQLite database and files, the backend's
models, logs); run it again to continue where it stopped, or pass ``--fresh`` to start over.
"""
from __future__ import annotations

import argparse
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.ls_client import LabelStudioClient, LabelStudioError  # noqa: E402
from scripts import servers  # noqa: E402
from scripts.import_folder import run_import  # noqa: E402

USER = "demo@example.com"
PASSWORD = "demo-password"
TOKEN = "demo-token-0123456789abcdef"  # a legacy API token (6-40 characters)
TITLE = "Noisy MNIST (demo)"


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_port(wanted: int) -> int:
    return wanted if port_free(wanted) else servers.free_port()


def make_sample(out: Path, *, limit: int, noise: float, seed: int) -> None:
    script = servers.REPO / "scripts" / "make_noisy_dataset.py"
    if not script.exists():
        raise RuntimeError(f"{script} is missing")
    subprocess.run([sys.executable, str(script), "--source", "mnist", "--out", str(out),
                    "--noise", str(noise), "--kind", "symmetric", "--seed", str(seed),
                    "--limit", str(limit)], check=True, stdin=subprocess.DEVNULL)


def wait_scored(ls: LabelStudioClient, project: int, *, total: int, backend: servers.Server,
                timeout: float) -> str:
    """Wait until every task has a prediction of the project's model_version; print progress."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if backend.process.poll() is not None:
            raise RuntimeError(f"the backend stopped; see {backend.log}")
        version = ls.get(f"/api/projects/{project}").get("model_version") or ""
        counts = ls.get(f"/api/projects/{project}/model-versions") or {}
        done = counts.get(version, 0) if isinstance(counts, dict) else 0
        if (version, done) != last:
            print(f"  model_version {version or '-'}: {done}/{total} tasks scored", flush=True)
            last = (version, done)
        if version and done >= total:
            return version
        time.sleep(2)
    raise RuntimeError(f"not every task was scored within {timeout:.0f} s; see {backend.log}")


def _interrupt(signum, frame):
    """The first Ctrl-C or SIGTERM: stop. A second one that arrives before the ``except`` clause
    runs (``timeout`` and ``make`` each passing one on, as in ``timeout 300 make demo``) only
    prints, since this handler has already switched both signals to ``_still_stopping``."""
    _stop_quietly()
    raise KeyboardInterrupt


def _still_stopping(signum, frame):
    print("still stopping Label Studio and the backend...", flush=True)


def _stop_quietly() -> None:
    """From here on a second Ctrl-C or SIGTERM does not interrupt the servers' shutdown (it
    printed a traceback from the middle of it)."""
    signal.signal(signal.SIGINT, _still_stopping)
    signal.signal(signal.SIGTERM, _still_stopping)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=servers.REPO / ".demo", help="state folder (default .demo)")
    ap.add_argument("--ls-port", type=int, default=8080)
    ap.add_argument("--backend-port", type=int, default=9090)
    ap.add_argument("--limit", type=int, default=2000, help="MNIST images in the sample (default 2000)")
    ap.add_argument("--noise", type=float, default=0.1, help="fraction of flipped labels (default 0.1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fresh", action="store_true", help="delete the state folder first")
    ap.add_argument("--no-wait", action="store_true", help="exit after scoring (stops the servers)")
    args = ap.parse_args(argv)

    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM stops everything like Ctrl-C does
    # a shell starts background jobs with SIGINT ignored; Ctrl-C / SIGINT must stop the demo anyway
    signal.signal(signal.SIGINT, _interrupt)
    state: Path = args.dir.resolve()
    if args.fresh and state.exists():
        shutil.rmtree(state)
    docroot = state / "files"
    started: list[servers.Server] = []
    try:
        ls_port, be_port = pick_port(args.ls_port), pick_port(args.backend_port)
        first = not (state / "label-studio" / "label_studio.sqlite3").exists()
        print(f"starting Label Studio on http://localhost:{ls_port}"
              + (" (first start: database migrations take about a minute)" if first else ""), flush=True)
        ls_server = servers.start_label_studio(
            data_dir=state / "label-studio", document_root=docroot, port=ls_port, username=USER,
            password=PASSWORD, token=TOKEN, log=state / "logs" / "label-studio.log")
        started.append(ls_server)
        print(f"starting the ML backend on http://localhost:{be_port}", flush=True)
        backend = servers.start_backend(
            port=be_port, model_dir=state / "models", label_studio_url=ls_server.url,
            api_key=TOKEN, log=state / "logs" / "backend.log")
        started.append(backend)

        sample = docroot / "noisy-mnist"
        if not (sample / "truth.csv").exists():
            print(f"making a noisy MNIST sample: {args.limit} images, {args.noise:.0%} labels flipped", flush=True)
            make_sample(sample, limit=args.limit, noise=args.noise, seed=args.seed)
        summary = run_import(sample, url=ls_server.url, api_key=TOKEN, title=TITLE,
                             ml_backend=backend.url, storage="local", document_root=docroot)
        ls = LabelStudioClient(ls_server.url, TOKEN)
        total = summary.found
        print("training and scoring (a minute or two)...", flush=True)
        version = wait_scored(ls, summary.project_id, total=total, backend=backend, timeout=1800)
        url = summary.project_url.replace("127.0.0.1", "localhost")
        print(f"""
Ready: every task has a suspiciousness score (model_version {version}).

  Open      {url}
  Log in    {USER} / {PASSWORD}
  Then      the project opens on its tab "Most suspicious first": Prediction score shown,
            highest first (likely wrong labels on top). Click a row to open the task.
  Why       click the model's tab (sparkle icon, "suspicion-...", left of yours): its guess is
            the chosen class, the text box says why the task is suspect. Then click your tab.
  Review    wrong label: press the right digit (or click it), then Update (Ctrl+Enter);
            right label: press r (or tick "label is right"), then Update.
            Next task: click it in the list on the left. Reviewed tasks sink to the
            bottom: click the project's name at the top and reload the page for the new order.
  Truth     {sample / 'truth.csv'} lists the planted faults.
  Logs      {state / 'logs'}

Press Ctrl-C to stop Label Studio and the backend.""", flush=True)
        if not args.no_wait:
            while all(s.process.poll() is None for s in started):
                time.sleep(1)
            dead = [s for s in started if s.process.poll() is not None]
            raise RuntimeError(f"{dead[0].name} stopped; see {dead[0].log}")
        return 0
    except KeyboardInterrupt:
        _stop_quietly()
        print("\nstopping...", flush=True)
        return 0
    except (LabelStudioError, RuntimeError, ValueError, subprocess.CalledProcessError) as exc:
        msg = str(exc) if not isinstance(exc, LabelStudioError) else f"Label Studio: {exc}"
        print(f"demo failed: {msg}", file=sys.stderr)
        return 1
    finally:
        _stop_quietly()
        for server in reversed(started):
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
