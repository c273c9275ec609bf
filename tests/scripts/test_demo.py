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


class PressedAgainWhileStopping:
    """A started server whose stop is interrupted by the user pressing Ctrl-C again."""
    name = "Label Studio"
    url = "http://127.0.0.1:1"

    def __init__(self):
        self.stopped = False

    def stop(self):
        os.kill(os.getpid(), signal.SIGINT)
        self.stopped = True


def test_a_second_ctrl_c_during_the_shutdown_lets_the_servers_stop(tmp_path, monkeypatch, capsys,
                                                                    restored_signals):
    server = PressedAgainWhileStopping()

    def first_ctrl_c(**kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(demo.servers, "start_label_studio", lambda **kwargs: server)
    monkeypatch.setattr(demo.servers, "start_backend", first_ctrl_c)
    assert demo.main(["--dir", str(tmp_path / "state"), "--ls-port", "0", "--backend-port", "0"]) == 0
    assert server.stopped
    out = capsys.readouterr().out
    assert "stopping..." in out and "still stopping" in out


class SignalledTwiceAtOnce:
    """A running server while SIGTERM arrives twice in a row (``timeout`` signals ``make``, which
    passes it on: the second came before the first had been handled, a traceback in the demo)."""
    name = "Label Studio"
    url = "http://127.0.0.1:1"
    process = None

    def __init__(self):
        self.stopped = False

    def stop(self):
        self.stopped = True


def test_two_signals_in_a_row_stop_the_demo_without_a_traceback(tmp_path, monkeypatch, capsys, restored_signals):
    server = SignalledTwiceAtOnce()

    def signalled_twice(**kwargs):
        handler = signal.getsignal(signal.SIGTERM)
        try:
            handler(signal.SIGTERM, None)
        finally:
            signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)   # the second, before any except clause

    monkeypatch.setattr(demo.servers, "start_label_studio", lambda **kwargs: server)
    monkeypatch.setattr(demo.servers, "start_backend", signalled_twice)
    assert demo.main(["--dir", str(tmp_path / "state"), "--ls-port", "0", "--backend-port", "0"]) == 0
    assert server.stopped
    out = capsys.readouterr().out
    assert "stopping..." in out and "still stopping" in out
