"""The scale benchmark's helpers: probe summaries, the reviews it makes, its wait for the cleanup, its table."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from backend.labels import parse_label_config
from scripts.bench_measure import Sample, percentile, summarize
from scripts import bench_scale
from scripts.bench_scale import table, verdict_targets

CONFIG = ('<View><Image name="image" value="$image"/><Choices name="label" toName="image">'
          '<Choice value="cat"/><Choice value="dog"/></Choices></View>')


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([3.0], 0.99) == 3.0
    assert percentile([], 0.5) is None


def test_summary_counts_failures_inside_the_window_only():
    samples = [Sample(0.0, 0.1, 200), Sample(1.0, 0.2, 500, "500"), Sample(2.0, 0.3, 0, "ReadTimeout"),
               Sample(9.0, 5.0, 500, "500")]
    s = summarize(samples, start=0.5, end=3.0)
    assert s["count"] == 2 and s["failed"] == 2
    assert s["failures"] == ["0 ReadTimeout", "500 500"]
    assert s["max_s"] == 0.3
    assert summarize(samples)["count"] == 4


def test_reviews_correct_planted_faults_and_confirm_the_rest():
    spec = parse_label_config(CONFIG)
    given = [{"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": ["cat"]}}]
    top = [{"id": i, "data": {"path": f"p{i}"}, "annotations": [{"id": 10 + i, "result": given}]}
           for i in range(3)]
    truth = {"p0": {"is_fault": "1", "true_label": "dog"}, "p1": {"is_fault": "0", "true_label": "cat"},
             "p2": {"is_fault": "1", "true_label": "dog"}}
    targets = verdict_targets(top, truth, spec, count=2)
    assert [aid for aid, _ in targets] == [10, 11]
    assert targets[0][1][0]["value"]["choices"] == ["dog"]
    assert targets[1][1] == given


def test_table_shows_the_training_report_and_missing_figures_as_none():
    figures = {"n": 2000, "db": "sqlite", "import_seconds": 4.8,
               "first_training": {"report": {"list_seconds": 5.4, "download_seconds": 0.9,
                                             "fit_seconds": 32.8, "push_seconds": 4.2},
                                  "start_to_all_scored_seconds": 44.1}}
    text = table(figures)
    assert "5.4 / 0.9 / 32.8 / 4.2" in text
    assert "44.1" in text
    line = next(x for x in text.splitlines() if x.startswith("second_training: Start Training"))
    assert line.split()[-1] == "None"


def test_label_studio_500_answers_are_counted_once_by_request_kind(tmp_path):
    from scripts.bench_stack import http_500_answers, locked_errors
    line = '[2026-12-01 22:57:49,022] [django.server::log_message::213] [ERROR] "PATCH /api/annotations/10099 HTTP/1.1" 500 1918'
    ok = '[2026-12-01 22:57:50,022] [django.server::log_message::213] [INFO] "PATCH /api/annotations/10099 HTTP/1.1" 200 537'
    other = '[2026-12-01 23:03:01,814] [django.server::log_message::213] [ERROR] "GET /api/projects/1 HTTP/1.1" 500 1918'
    locked = '[2026-12-01 22:22:01,137] [core.utils.common::custom_exception_handler::97] [ERROR] 2b database is locked'
    log = tmp_path / "ls.log"
    log.write_text("\n".join([line, line, ok, other, other, locked]) + "\n")
    assert http_500_answers(log) == {"PATCH /api/annotations/<id>": 1, "GET /api/projects/<id>": 1}
    assert locked_errors(log) == 1
    assert http_500_answers(tmp_path / "missing.log") == {}


@pytest.mark.parametrize("stop, message", [
    (RuntimeError("Label Studio refused the last probe"), "refused the last probe"),
    (SystemExit(143), "stopped (exit status 143)"),      # SIGTERM, as main's handler turns it
    (KeyboardInterrupt(), "stopped (exit status 130)"),
], ids=["error", "sigterm", "ctrl-c"])
def test_a_failure_or_a_stop_late_in_the_run_keeps_what_was_measured(tmp_path, monkeypatch, capsys, stop, message):
    import json

    def failing_run(args, *, out, echo=print):
        out["first_training"] = {"start_to_all_scored_seconds": 246.9}
        raise stop
    monkeypatch.setattr(bench_scale, "run", failing_run)
    path = tmp_path / "scale.json"
    assert bench_scale.main(["--n", "200", "--out", str(path)]) == 1
    written = json.loads(path.read_text())
    assert written["first_training"] == {"start_to_all_scored_seconds": 246.9}
    assert message in written["error"] and message in capsys.readouterr().err


class _DrivenCleanup:
    """The backend's ``/status`` and Label Studio's model versions for :func:`wait_cleanup`, on a
    clock that only ``sleep`` moves: ``passes`` are the successive ``last_cleanup`` reports (the
    last one stays)."""

    def __init__(self, monkeypatch, passes):
        self.now, self.passes = 100.0, list(passes)
        monkeypatch.setattr(bench_scale, "time", SimpleNamespace(
            monotonic=lambda: self.now, sleep=self.sleep, strftime=lambda fmt: "00:00:00"))
        monkeypatch.setattr(bench_scale, "backend_status", self.status)

    def status(self, backend_url, project):
        return {"last_cleanup": self.passes.pop(0) if len(self.passes) > 1 else self.passes[0]}

    def sleep(self, seconds):
        self.now += seconds

    @staticmethod
    def model_versions(project):
        return {"v2": 50, "v1": 3, "v0": None}


def test_wait_cleanup_returns_the_pass_it_waited_for_and_when_the_wait_ended(monkeypatch):
    done = {"model_version": "v2", "stopped": False, "tasks_cleaned": 40}
    ls = _DrivenCleanup(monkeypatch, [{"model_version": "v1"}, {"model_version": "v2", "stopped": True}, done])
    clean = bench_scale.wait_cleanup(ls, "http://backend", 1, version="v2", timeout=60, cleanup_wait=None)
    assert clean == bench_scale.Cleanup(t=102.0, end=102.0, report=done, older_predictions_left=3)


def test_wait_cleanup_goes_on_beside_a_pass_longer_than_cleanup_wait_and_fails_without_one(monkeypatch):
    ls = _DrivenCleanup(monkeypatch, [{"model_version": "v2", "stopped": True}])
    clean = bench_scale.wait_cleanup(ls, "http://backend", 1, version="v2", timeout=60, cleanup_wait=2.5)
    assert clean == bench_scale.Cleanup(t=None, end=103.0, report=None, older_predictions_left=3)
    with pytest.raises(RuntimeError, match="not removed within 60 s"):
        bench_scale.wait_cleanup(ls, "http://backend", 1, version="v2", timeout=60, cleanup_wait=None)
    assert ls.now == 103.0 + 60


def _serve_ok():
    import http.server
    import threading

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _wait_for(probe, count, *, limit=60.0):
    import time
    deadline = time.monotonic() + limit
    while len(probe.samples) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_probe_in_its_own_process_reports_answers_and_refusals_as_samples():
    import functools

    from scripts.bench_measure import Probe, http_status
    from scripts.servers import free_port
    server = _serve_ok()
    try:
        up = Probe(functools.partial(http_status, f"http://127.0.0.1:{server.server_port}/health"),
                   interval=0.05, name="up")
        down = Probe(functools.partial(http_status, f"http://127.0.0.1:{free_port()}/health", timeout=2),
                     interval=0.05, name="down")
        up.start()
        down.start()
        _wait_for(up, 3)
        _wait_for(down, 2)
        got_up, got_down = list(up.stop()), list(down.stop())
    finally:
        server.shutdown()
    assert len(got_up) >= 3 and all(s.status == 200 and s.error == "" for s in got_up)
    assert all(s.t <= t.t for s, t in zip(got_up, got_up[1:]))  # in order, on this process's clock
    assert len(got_down) >= 2 and all(s.status == 0 and s.error == "ConnectionError" for s in got_down)
    assert summarize(got_down)["failed"] == len(got_down)
