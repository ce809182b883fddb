"""Stop signals with real signals delivered to this process: the first of SIGINT, SIGTERM or SIGHUP
asks for a stop; during a save further ones only say so; outside a save a second Ctrl-C escapes."""
from __future__ import annotations

import os
import signal

import pytest

from sac.training.signals import StopSignals

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["INT", "TERM", "HUP"])
def test_the_first_signal_requests_a_stop_with_its_exit_code(signum, capfd):
    with StopSignals() as stop:
        os.kill(os.getpid(), signum)
        assert stop.requested and stop.exit_code == 128 + signum
    assert "stopping after this step; the run is saved first" in capfd.readouterr().err


def test_signals_during_a_save_say_please_wait_and_do_not_abort_it(capfd):
    with StopSignals() as stop:
        with stop.saving():
            for _ in range(3):
                os.kill(os.getpid(), signal.SIGINT)  # no KeyboardInterrupt escapes the save
        assert stop.requested and stop.name == "SIGINT"  # the run stops once the save is done
    assert capfd.readouterr().err.count("saving, please wait") == 3


def test_a_second_ctrl_c_outside_a_save_raises_keyboard_interrupt():
    with StopSignals():
        os.kill(os.getpid(), signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)


def test_the_previous_handlers_come_back():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    with StopSignals():
        pass
    assert {s: signal.getsignal(s) for s in before} == before
