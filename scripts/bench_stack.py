"""The stack :mod:`scripts.bench_scale` measures: Label Studio 1.23.2 (SQLite, or a private
PostgreSQL cluster) and the backend under gunicorn reading Label Studio's local-files folder,
the Fashion-MNIST folder it imports (with the truth of its planted faults), and what Label
Studio's log says afterwards (``database is locked`` refusals, HTTP 500 answers)."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from scripts import servers
from scripts.bench_pg import Postgres, label_studio_db_env, start_postgres

USER, PASSWORD = "bench@example.com", "bench-password-1"
TOKEN = "bench0123456789abcdef0123456789abcdef"  # legacy token: 6..40 characters


@dataclass
class Stack:
    base: Path
    docroot: Path
    ls_server: servers.Server
    backend: servers.Server | None = None
    pg: Postgres | None = None

    def stop(self) -> None:
        for s in (self.backend, self.ls_server):
            if s is not None:
                s.stop()
        if self.pg is not None:
            self.pg.stop()


def start_stack(base: Path, *, db: str, tuned: bool = True, echo: Callable[[str], None] = print) -> Stack:
    """Label Studio (SQLite or a private PostgreSQL; with :data:`servers.LABEL_STUDIO_TUNING`
    unless ``tuned`` is False) and the backend, under ``base``."""
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)  # the postgres user must reach its cluster folder
    pg = None
    if db == "postgres":
        pg = start_postgres(base / "pg")
        os.environ.update(label_studio_db_env(pg))  # inherited by Label Studio's process only
        echo(f"PostgreSQL {pg.bin.parent.name} on 127.0.0.1:{pg.port}")
    docroot = base / "files"
    try:
        ls_server = servers.start_label_studio(
            data_dir=base / "label-studio", document_root=docroot, port=servers.free_port(),
            username=USER, password=PASSWORD, token=TOKEN, log=base / "logs" / "label-studio.log",
            timeout=600, tuned=tuned)
    except BaseException:
        if pg:
            pg.stop()
        raise
    stack = Stack(base, docroot, ls_server, pg=pg)
    try:
        stack.backend = servers.start_backend(
            port=servers.free_port(), model_dir=base / "models", label_studio_url=ls_server.url,
            api_key=TOKEN, log=base / "logs" / "backend.log",
            extra_env={"LOCAL_FILES_DOCUMENT_ROOT": str(docroot), "VERDICT_BATCH": "200",
                       "VERDICT_QUIET_SECONDS": "10", "LOG_LEVEL": "INFO"})
    except BaseException:
        stack.stop()
        raise
    echo(f"Label Studio {ls_server.url} ({db}), backend {stack.backend.url}, files in {base}")
    return stack


def make_folder(out: Path, *, n: int, seed: int) -> Path:
    """``n`` Fashion-MNIST images with 10% symmetric label noise and truth.csv (kept when present)."""
    from scripts.make_noisy_dataset import write_noisy_dataset
    if not (out / "truth.csv").exists():
        write_noisy_dataset(out, source="fashion", kind="symmetric", rate=0.1, seed=seed, limit=n)
    return out


def read_truth(folder: Path) -> dict[str, dict]:
    import csv
    with open(folder / "truth.csv", newline="") as fh:
        return {row["path"]: row for row in csv.DictReader(fh)}


def locked_errors(log: Path) -> int:
    """How many requests Label Studio answered with SQLite's "database is locked"."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return 0
    return sum(1 for line in text.splitlines()
               if "custom_exception_handler" in line and "database is locked" in line)


def http_500_answers(log: Path) -> dict[str, int]:
    """``{"METHOD path-kind": count}`` of Label Studio's HTTP 500 answers in its access log."""
    counts: dict[str, int] = {}
    seen = set()
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return counts
    for line in lines:
        m = re.search(r'^\[([^\]]+)\].*"(\w+) (/api/[a-z/_-]+?)(/\d+)?[/?" ].*" 500 ', line)
        if m and line not in seen:  # Label Studio logs each access line twice
            seen.add(line)
            key = f"{m.group(2)} {m.group(3)}{'/<id>' if m.group(4) else ''}"
            counts[key] = counts.get(key, 0) + 1
    return counts
