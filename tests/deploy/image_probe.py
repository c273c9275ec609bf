"""Host side of .ci/docker_build_check.sh: a fake Label Studio for the backend running in the built
image, and the HTTP checks made from the host. Standard library only (runs with any Python 3.11,
before or without the project's virtualenv).

    python3 image_probe.py fake-ls --port P --token T --summary FILE   # serves until stopped
    python3 image_probe.py wait-health URL --pid PID --timeout 300
    python3 image_probe.py setup URL --payload setup.json --ls-url U --token T
    python3 image_probe.py start-training URL --payload webhook-start-training.json
    python3 image_probe.py wait-trained URL --summary FILE --timeout 600

The fake serves one project (id 1, the label config of the captured /setup request) with
``TASKS`` labeled 8x8 grayscale PNG images in three classes, a few of them labeled wrong, in the
shapes of Label Studio 1.23.2 (the same as tests/backend/conftest.py's fake). It answers 401
without the token, 404 for anything it does not know, and writes what it received (predictions,
the project's model_version, requests it could not answer) to ``--summary`` after every change.
Each command exits 0 on success and 1 with a one-line ``FAIL:`` reason otherwise.
"""
from __future__ import annotations

import argparse
import http.server
import json
import os
import re
import struct
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

PROJECT = 1
CHOICES = ("0", "1", "2")
TASKS = 24
FLIPPED = (5, 17)  # task ids whose label is wrong


class ProbeError(Exception):
    """A check failed; the message is the reason."""


def png_gray(value: int, *, size: int = 8) -> bytes:
    """A ``size`` x ``size`` 8-bit grayscale PNG of one value (no imaging library needed)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    rows = b"".join(b"\x00" + bytes([value]) * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


@dataclass
class FakeProject:
    """The state of the fake Label Studio: one project, its tasks, what the backend sent."""
    token: str
    label_config: str
    summary: Path
    tasks: dict = field(default_factory=dict)
    images: dict = field(default_factory=dict)
    predictions: list = field(default_factory=list)
    model_version: str | None = None
    unanswered: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def seeded(cls, *, token: str, label_config: str, summary: Path) -> "FakeProject":
        fake = cls(token=token, label_config=label_config, summary=summary)
        for tid in range(1, TASKS + 1):
            true_class = tid % len(CHOICES)
            label = CHOICES[(true_class + 1) % len(CHOICES)] if tid in FLIPPED else CHOICES[true_class]
            url = f"/data/upload/{PROJECT}/img{tid}.png"
            fake.images[url] = png_gray(30 + 90 * true_class + (tid * 7) % 11)
            stamp = "2026-01-01T00:00:00Z"
            ann = {"id": 1000 + tid, "task": tid, "project": PROJECT, "was_cancelled": False,
                   "ground_truth": False, "created_at": stamp, "updated_at": stamp,
                   "result": [{"from_name": "label", "to_name": "image", "type": "choices",
                               "value": {"choices": [label]}}]}
            fake.tasks[tid] = {"id": tid, "project": PROJECT, "data": {"image": url},
                               "annotations": [ann], "predictions": []}
        fake.save()
        return fake

    def save(self) -> None:
        body = {"predictions": self.predictions, "model_version": self.model_version,
                "unanswered": self.unanswered[-20:], "tasks": sorted(self.tasks)}
        tmp = self.summary.with_suffix(".tmp")
        tmp.write_text(json.dumps(body), encoding="utf-8")
        os.replace(tmp, self.summary)

    def project(self) -> dict:
        return {"id": PROJECT, "title": "image check", "label_config": self.label_config,
                "model_version": self.model_version or "", "task_number": len(self.tasks)}

    def annotation(self, aid: int) -> dict | None:
        return next((a for t in self.tasks.values() for a in t["annotations"] if a["id"] == aid), None)

    def answer(self, method: str, path: str, query: dict, body) -> tuple[int, object]:
        """(status, JSON body or bytes) of one request, with the lock held."""
        def match(pattern: str):
            return re.fullmatch(pattern, path)
        if method == "GET" and path in self.images:
            return 200, self.images[path]
        if method == "GET" and match(r"/api/current-user/whoami/?"):
            return 200, {"id": 1, "email": "admin@example.com", "username": "admin"}
        if method == "GET" and match(rf"/api/projects/{PROJECT}/?"):
            return 200, self.project()
        if method == "PATCH" and match(rf"/api/projects/{PROJECT}/?"):
            version = (body or {}).get("model_version")
            if not any(p.get("model_version") == version for p in self.predictions):
                return 400, {"model_version": ["no predictions of this version"]}
            self.model_version = version
            return 200, self.project()
        if method == "GET" and match(r"/api/tasks/?"):
            return self._task_page(query)
        if m := (method == "GET" and match(r"/api/tasks/(\d+)/?")):
            task = self.tasks.get(int(m[1]))
            return (200, task) if task else (404, {"detail": "Not found."})
        if m := (method == "GET" and match(r"/api/annotations/(\d+)/?")):
            ann = self.annotation(int(m[1]))
            return (200, ann) if ann else (404, {"detail": "Not found."})
        if method == "POST" and match(rf"/api/projects/{PROJECT}/import/predictions/?"):
            items = [p for p in body if 0 <= p.get("score", -1) <= 1 and p.get("task") in self.tasks]
            self.predictions.extend(items)
            return 201, {"created": len(items)}
        if method == "GET" and match(rf"/api/projects/{PROJECT}/model-versions/?"):
            counts: dict = {}
            for p in self.predictions:
                counts[p["model_version"]] = counts.get(p["model_version"], 0) + 1
            return 200, counts
        if method == "DELETE" and match(rf"/api/projects/{PROJECT}/model-versions/?"):
            version = (body or {}).get("model_version")
            before = len(self.predictions)
            self.predictions = [p for p in self.predictions if p.get("model_version") != version]
            return 200, {"deleted_predictions": before - len(self.predictions)}
        self.unanswered.append(f"{method} {path}")
        return 404, {"detail": f"the image check's fake Label Studio has no {method} {path}"}

    def _task_page(self, query: dict) -> tuple[int, object]:
        if query.get("project") not in (None, str(PROJECT)):
            return 200, {"tasks": [], "total": 0}
        page, size = int(query.get("page", 1)), int(query.get("page_size", 100))
        tasks = [self.tasks[k] for k in sorted(self.tasks)]
        chunk = tasks[(page - 1) * size: page * size]
        if not chunk and page > 1:
            return 404, {"detail": "Invalid page."}
        return 200, {"tasks": chunk, "total": len(tasks), "total_annotations": len(tasks),
                     "total_predictions": 0}


def serve_fake_ls(fake: FakeProject, port: int) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def _handle(self):
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if self.headers.get("Authorization") != f"Token {fake.token}":
                status, body = 401, {"detail": "Authentication credentials were not provided."}
            else:
                try:
                    data = json.loads(raw) if raw else None
                except ValueError:
                    status, body = 400, {"detail": "body is not JSON"}
                else:
                    with fake.lock:
                        status, body = fake.answer(self.command, parts.path, query, data)
                        fake.save()
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "image/png" if isinstance(body, bytes) else "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle

        def log_message(self, *args):
            pass

    return http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)


# --- checks made from the host -----------------------------------------------------------------------
def http_json(method: str, url: str, body=None, *, timeout: float = 10.0) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            return exc.code, json.loads(text)
        except ValueError:
            return exc.code, text


def wait_health(url: str, *, pid: int | None, timeout: float) -> dict:
    """The /health answer once it says UP; fails when ``pid`` exits or ``timeout`` passes."""
    deadline, last = time.monotonic() + timeout, "no answer"
    while time.monotonic() < deadline:
        if pid is not None and not Path(f"/proc/{pid}").exists():
            raise ProbeError(f"the backend process {pid} exited before /health answered ({last})")
        try:
            status, body = http_json("GET", f"{url}/health", timeout=2)
            if status == 200 and isinstance(body, dict) and body.get("status") == "UP":
                return body
            last = f"HTTP {status}: {body}"
        except (OSError, ValueError) as exc:
            last = str(exc)
        time.sleep(1)
    raise ProbeError(f"/health did not answer UP within {timeout:.0f} s (last: {last})")


def post_setup(url: str, *, payload: Path, ls_url: str, token: str) -> dict:
    """POST the captured /setup request, pointed at the fake Label Studio; its JSON answer."""
    captured = json.loads(payload.read_text(encoding="utf-8"))
    if captured.get("method") != "POST" or captured.get("path") != "/setup":
        raise ProbeError(f"{payload} is not a captured POST /setup")
    body = dict(captured["body"], hostname=ls_url, access_token=token)
    status, answer = http_json("POST", f"{url}/setup", body, timeout=10)
    if status != 200 or not isinstance(answer, dict) or not answer.get("model_version"):
        raise ProbeError(f"/setup answered HTTP {status}: {answer}")
    return answer


def start_training(url: str, *, payload: Path) -> dict:
    """POST the captured START_TRAINING webhook (Label Studio's "Start Training" button)."""
    captured = json.loads(payload.read_text(encoding="utf-8"))
    body = captured.get("body") or {}
    if captured.get("path") != "/webhook" or body.get("action") != "START_TRAINING":
        raise ProbeError(f"{payload} is not a captured START_TRAINING webhook")
    if (body.get("project") or {}).get("id") != PROJECT:
        raise ProbeError(f"{payload} is for project {body.get('project', {}).get('id')}, not {PROJECT}")
    status, answer = http_json("POST", f"{url}/webhook", body, timeout=10)
    if status != 200 or not isinstance(answer, dict) or answer.get("status") != "ok":
        raise ProbeError(f"START_TRAINING answered HTTP {status}: {answer}")
    return answer


def wait_trained(url: str, *, summary: Path, timeout: float) -> dict:
    """Waits until the fake Label Studio holds a prediction of its current model_version for
    every task (the first training ran in the image and published); fails early on a training
    error reported by /status."""
    deadline, status = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        try:
            code, status = http_json("GET", f"{url}/status?project={PROJECT}", timeout=5)
        except (OSError, ValueError) as exc:
            code, status = 0, f"no answer: {exc}"
        state = json.loads(summary.read_text(encoding="utf-8"))
        current = [p for p in state["predictions"] if p["model_version"] == state["model_version"]]
        if state["model_version"] and {p["task"] for p in current} == set(state["tasks"]):
            return {"model_version": state["model_version"], "predictions": len(current),
                    "top_suspects": [p["task"] for p in sorted(current, key=lambda p: -p["score"])[:4]]}
        error = status.get("last_error") if isinstance(status, dict) else None
        if code == 200 and error:
            raise ProbeError(f"training failed in the image: {error} "
                             f"(unanswered by the fake: {state['unanswered']})")
        time.sleep(2)
    raise ProbeError(f"no published scores within {timeout:.0f} s; /status: {status}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("fake-ls")
    ls.add_argument("--port", type=int, required=True)
    ls.add_argument("--token", required=True)
    ls.add_argument("--summary", type=Path, required=True)
    ls.add_argument("--payload", type=Path, required=True, help="captured /setup (label config)")
    health = sub.add_parser("wait-health")
    health.add_argument("url")
    health.add_argument("--pid", type=int)
    health.add_argument("--timeout", type=float, default=300)
    setup = sub.add_parser("setup")
    setup.add_argument("url")
    setup.add_argument("--payload", type=Path, required=True)
    setup.add_argument("--ls-url", required=True)
    setup.add_argument("--token", required=True)
    train = sub.add_parser("start-training")
    train.add_argument("url")
    train.add_argument("--payload", type=Path, required=True)
    trained = sub.add_parser("wait-trained")
    trained.add_argument("url")
    trained.add_argument("--summary", type=Path, required=True)
    trained.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args(argv)
    try:
        if args.command == "fake-ls":
            schema = json.loads(args.payload.read_text(encoding="utf-8"))["body"]["schema"]
            fake = FakeProject.seeded(token=args.token, label_config=schema, summary=args.summary)
            server = serve_fake_ls(fake, args.port)
            print(f"fake Label Studio on http://127.0.0.1:{args.port}: project {PROJECT}, "
                  f"{TASKS} tasks", flush=True)
            server.serve_forever()
        elif args.command == "wait-health":
            print(f"/health: {json.dumps(wait_health(args.url, pid=args.pid, timeout=args.timeout))}")
        elif args.command == "setup":
            answer = post_setup(args.url, payload=args.payload, ls_url=args.ls_url, token=args.token)
            print(f"/setup: {json.dumps(answer)}")
        elif args.command == "start-training":
            print(f"START_TRAINING: {json.dumps(start_training(args.url, payload=args.payload))}")
        else:
            print(f"published: {json.dumps(wait_trained(args.url, summary=args.summary, timeout=args.timeout))}")
    except ProbeError as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
