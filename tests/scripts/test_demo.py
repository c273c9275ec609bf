"""The demo's shutdown: a second Ctrl-C or SIGTERM, during the stop or right after the first, does
not interrupt the stop."""
from __future__ import annotations

import os
import signal

import pytest

from scripts import demo


@pytest.fixture
def restored_signals():
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


class StoppableServer:
    """A started server that records its stop; ``interrupt_stop``: the user presses Ctrl-C again
    while it stops."""
    name = "Label Studio"
    url = "http://127.0.0.1:1"

    def __init__(self, *, interrupt_stop: bool = False):
        self.interrupt_stop = interrupt_stop
        self.stopped = False

    def stop(self):
        if self.interrupt_stop:
            os.kill(os.getpid(), signal.SIGINT)
        self.stopped = True


def _run_until_stopped(tmp_path, monkeypatch, capsys, server, start_backend) -> str:
    """Run the demo with ``server`` as Label Studio and ``start_backend`` signalling it; it must
    return 0 with the server stopped. Returns what it printed."""
    monkeypatch.setattr(demo.servers, "start_label_studio", lambda **kwargs: server)
    monkeypatch.setattr(demo.servers, "start_backend", start_backend)
    assert demo.main(["--dir", str(tmp_path / "state"), "--ls-port", "0", "--backend-port", "0"]) == 0
    assert server.stopped
    return capsys.readouterr().out


def test_a_second_ctrl_c_during_the_shutdown_lets_the_servers_stop(tmp_path, monkeypatch, capsys,
                                                                    restored_signals):
    def first_ctrl_c(**kwargs):
        raise KeyboardInterrupt

    out = _run_until_stopped(tmp_path, monkeypatch, capsys, StoppableServer(interrupt_stop=True), first_ctrl_c)
    assert "stopping..." in out and "still stopping" in out


def test_two_signals_in_a_row_stop_the_demo_without_a_traceback(tmp_path, monkeypatch, capsys, restored_signals):
    """SIGTERM twice in a row (``timeout`` signals ``make``, which passes it on): the second came
    before the first had been handled and printed a traceback."""
    def signalled_twice(**kwargs):
        handler = signal.getsignal(signal.SIGTERM)
        try:
            handler(signal.SIGTERM, None)
        finally:
            signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)   # the second, before any except clause

    out = _run_until_stopped(tmp_path, monkeypatch, capsys, StoppableServer(), signalled_twice)
    assert "stopping..." in out and "still stopping" in out
