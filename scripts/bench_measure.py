"""Measurement helpers of ``scripts/bench_scale.py``: periodic probes (a reviewer saving, the
backend's ``/health``), their summaries, a process tree's peak RSS, and the machine."""
from __future__ import annotations

import math
import multiprocessing
import os
import platform
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import requests

from scripts import servers

@dataclass
class Sample:
    t: float  # time.monotonic() when the call started
    seconds: float
    status: int  # HTTP status, 0 when no answer
    error: str = ""


class Probe:
    """Calls ``call`` every ``interval`` seconds until stopped, from a process of its own, so that
    what it times is the server's answer alone: the benchmark's own work (parsing Data Manager
    pages of megabytes) would otherwise count in a probe thread's timings. ``call`` must pickle
    (a module-level function, a ``functools.partial`` of one, or an instance like
    :class:`ReviewerSaves`); ``samples`` (each a :class:`Sample`) fills as the probe goes."""

    def __init__(self, call: Callable[[], int], *, interval: float, name: str):
        ctx = multiprocessing.get_context("spawn")
        self.samples: list[Sample] = []
        self._stopped = ctx.Event()
        self._recv, self._send = ctx.Pipe(duplex=False)
        self._process = ctx.Process(target=_probe_loop, args=(call, interval, self._stopped, self._send),
                                    name=name, daemon=True)
        self._reader = threading.Thread(target=self._read, name=f"{name}-reader", daemon=True)

    def start(self) -> None:
        self._process.start()
        self._send.close()  # the child holds the sending end: its exit ends the reader
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                self.samples.append(Sample(*self._recv.recv()))
            except (EOFError, OSError):
                return

    def stop(self) -> list[Sample]:
        self._stopped.set()
        self._process.join(timeout=60)
        self._reader.join(timeout=10)
        return self.samples


def _probe_loop(call: Callable[[], int], interval: float, stopped, send) -> None:
    """The probe's process: ``call`` every ``interval`` seconds until ``stopped`` is set, each
    result sent as ``(start, seconds, status, error)`` (status 0: no answer)."""
    try:
        while not stopped.is_set():
            t0 = time.monotonic()
            try:
                status, error = call(), ""
            except requests.RequestException as exc:
                status, error = 0, type(exc).__name__
            send.send((t0, time.monotonic() - t0, status,
                       error if status == 0 or status < 400 else error or str(status)))
            stopped.wait(max(0.0, interval - (time.monotonic() - t0)))
    finally:
        send.close()


def http_status(url: str, *, timeout: float = 10.0) -> int:
    """The HTTP status of ``GET url`` (a probe's call)."""
    return requests.get(url, timeout=timeout).status_code


@dataclass
class ReviewerSaves:
    """A probe's call: a reviewer saving one of ``targets`` (``(annotation_id, result)``, chosen
    at random with ``seed``) again with ``PATCH /api/annotations/<id>``; returns the status."""
    url: str
    token: str
    targets: list
    seed: int = 0
    timeout: float = 120.0

    def __call__(self) -> int:
        if not hasattr(self, "_client"):
            import random

            from backend.ls_client import LabelStudioClient
            self._client = LabelStudioClient(self.url, self.token, timeout=self.timeout)
            self._rng = random.Random(self.seed)
        return reviewer_save(self._client, *self._rng.choice(self.targets))


def reviewer_save(ls, annotation_id: int, result: list) -> int:
    """A reviewer pressing Update on an annotation (``PATCH /api/annotations/<id>``); returns the
    status (any: a refusal is a figure)."""
    return ls.request("PATCH", f"/api/annotations/{annotation_id}", json={"result": result},
                      expect=range(100, 600)).status_code


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-quantile (0..1) by the nearest-rank method; None for no values."""
    if not values:
        return None
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, max(0, math.ceil(q * len(ranked)) - 1))]


def summarize(samples: list[Sample], *, start: float | None = None, end: float | None = None) -> dict:
    """Count, failures and p50/p99/max seconds of the samples that overlap [start, end] (a save
    that began before a deletion and waited through it counts)."""
    chosen = [s for s in samples
              if (start is None or s.t + s.seconds >= start) and (end is None or s.t <= end)]
    secs = [s.seconds for s in chosen]
    failed = [s for s in chosen if s.status == 0 or s.status >= 400]
    return {"count": len(chosen), "failed": len(failed),
            "failures": sorted({f"{s.status} {s.error}".strip() for s in failed}),
            "p50_s": rounded(percentile(secs, 0.5)), "p99_s": rounded(percentile(secs, 0.99)),
            "max_s": rounded(max(secs) if secs else None)}


def rounded(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else round(x, digits)


def peak_rss_bytes(pid: int) -> int:
    """Largest VmHWM (peak resident set) of ``pid`` and its child processes (gunicorn's worker)."""
    best = 0
    pids = [pid]
    try:
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    best = max(best, int(line.split()[1]) * 1024)
        except OSError:
            continue
    return best


def machine() -> dict:
    mem = next((int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal:")), None)
    return {"nproc": os.cpu_count(), "memory_bytes": mem, "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(), "label_studio": servers.LS_VERSION,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()], "git": git_state()}


def git_state() -> dict:
    """The commit measured and the files of backend/ changed in the working tree."""
    import subprocess

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=servers.REPO, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    return {"commit": git("rev-parse", "--short", "HEAD"),
            "backend_changed": git("status", "--porcelain", "--", "backend").splitlines()}
