"""Communicator: data flow under every start method, crash reports, parent death, close, watchdog, overruns."""

from __future__ import annotations

import os
import re
import signal
import time

import numpy as np
import pytest

from communicators import CommunicatorError
from tests.support.processes import Script, child_pids, own_segments, pid_alive, wait_until
from tests.support.toy_communicators import CounterSensor, SlowHandler

pytestmark = pytest.mark.timeout(60)

START_METHODS = [pytest.param(m, id=m) for m in ("fork", "spawn", "forkserver")]


@pytest.fixture
def comms():
    """Builds communicators for a test and closes them afterwards, even when it fails."""
    made = []

    def make(cls=CounterSensor, **kwargs):
        made.append(cls(**kwargs))
        return made[-1]

    yield make
    for comm in made:
        comm.close()


def newest(comm) -> np.ndarray:
    return comm.sensor_buffer.latest()[0]


def failure(comm) -> CommunicatorError | None:
    try:
        comm.raise_if_failed()
    except CommunicatorError as err:
        return err
    return None


def echo_is(comm, command) -> bool:
    return comm.sensor_buffer.num_writes > 0 and np.allclose(newest(comm)[CounterSensor.HEADER:], command)


def timeout_calls(comm) -> int:
    return int(newest(comm)[2]) if comm.sensor_buffer.num_writes else 0


@pytest.mark.parametrize("method", START_METHODS)
def test_sensor_data_flows_and_commands_arrive(method, comms):
    comm = comms(start_method=method)
    comm.start()
    assert wait_until(lambda: comm.sensor_buffer.num_writes >= 3, 20.0), "no sensor data arrived"
    count, open_pid = newest(comm)[:2]
    assert count >= 1
    # The device was opened in the communicator's process, not here.
    assert open_pid == comm.pid != os.getpid()
    comm.actuator_buffer.write([0.25, -0.75])
    assert wait_until(lambda: echo_is(comm, [0.25, -0.75]), 5.0), f"command never arrived; echo {newest(comm)}"
    assert failure(comm) is None
    comm.close()
    assert not comm.is_alive() and comm.exitcode == 0


def test_handler_exception_reaches_the_parent_with_its_traceback(comms):
    comm = comms(crash_after=3)
    comm.start()
    assert wait_until(lambda: failure(comm) is not None, 10.0), "the crash was never reported"
    message = str(failure(comm))
    assert "'CounterSensor'" in message, "the error does not name the communicator"
    for text in ("Traceback", "RuntimeError: toy device failure after 3 readings", "in read_sensor"):
        assert text in message, f"{text!r} missing from the parent's error:\n{message}"
    assert wait_until(lambda: not comm.is_alive(), 5.0), "the communicator outlived its failed handler"
    assert comm.exitcode == 1


def test_a_killed_communicator_is_reported_as_killed(comms):
    comm = comms()
    comm.start()
    assert wait_until(lambda: comm.sensor_buffer.num_writes > 0, 20.0)
    os.kill(comm.pid, signal.SIGKILL)
    assert wait_until(lambda: failure(comm) is not None, 5.0)
    with pytest.raises(CommunicatorError, match=re.escape("'CounterSensor' was killed by signal 9")):
        comm.raise_if_failed()


PARENT_SCRIPT = """
import time
from tests.support.toy_communicators import {cls}
comm = {cls}({args}start_method={method!r})
comm.start()
while {wait_for_data} and comm.sensor_buffer.num_writes == 0:
    time.sleep(0.01)
print(comm.pid, flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("method", START_METHODS)
def test_communicator_exits_soon_after_its_parent_is_killed(method):
    code = PARENT_SCRIPT.format(cls="CounterSensor", args="", method=method, wait_for_data=True)
    with Script(code) as parent:
        child = int(parent.read_line())
        try:
            assert pid_alive(child)
            parent.kill()
            killed = time.monotonic()
            assert wait_until(lambda: not pid_alive(child), 1.5), "the communicator outlived its parent by 1.5 s"
            assert time.monotonic() - killed < 1.5
        finally:
            if pid_alive(child):
                os.kill(child, signal.SIGKILL)


def test_communicator_exits_when_its_parent_dies_while_the_device_opens():
    # The parent dies before the device is open: the child must still notice once it is.
    code = PARENT_SCRIPT.format(cls="SlowOpen", args="delay=1.0, ", method="fork", wait_for_data=False)
    with Script(code) as parent:
        child = int(parent.read_line())
        try:
            parent.kill()
            assert wait_until(lambda: not pid_alive(child), 1.0 + 2.0), "the communicator outlived its parent"
        finally:
            if pid_alive(child):
                os.kill(child, signal.SIGKILL)


def test_close_is_idempotent_and_leaves_nothing(comms):
    before = own_segments()
    comm = comms()
    mine = own_segments() - before
    assert mine, "the communicator's buffers are not in /dev/shm"
    comm.start()
    assert wait_until(lambda: comm.sensor_buffer.num_writes > 0, 20.0)
    pid = comm.pid
    comm.close()
    comm.close()
    assert not pid_alive(pid) and comm.exitcode == 0
    assert pid not in child_pids()
    assert not (own_segments() & mine), "segments left after close()"


def test_close_of_a_never_started_communicator_frees_its_buffers(comms):
    before = own_segments()
    comm = comms()
    comm.close()
    comm.close()
    assert own_segments() == before


def test_watchdog_zeroes_stale_commands_and_runs_before_the_first_command(comms):
    timeout = 0.25
    comm = comms(actuator_timeout=timeout)
    comm.start()
    # Before any command the watchdog holds the device stopped.
    assert wait_until(lambda: timeout_calls(comm) >= 2, 10.0), "no watchdog call before the first command"
    assert echo_is(comm, [0.0, 0.0])
    # While commands keep coming, the watchdog stays quiet.
    command = [0.5, -0.5]
    end = time.monotonic() + 0.6
    while time.monotonic() < end:
        comm.actuator_buffer.write(command)
        time.sleep(0.02)
    last_write = time.monotonic()
    comm.actuator_buffer.write(command)
    calls_while_flowing = timeout_calls(comm)
    assert echo_is(comm, command), f"echo {newest(comm)} while commands were flowing"
    assert comm.overruns()["watchdog_trips"] == 0, "the watchdog tripped while commands were flowing"
    # Then commands stop: zero, but not before the timeout.
    assert wait_until(lambda: echo_is(comm, [0.0, 0.0]), 5.0), "a stale command was never zeroed"
    assert time.monotonic() - last_write >= timeout, "zeroed before actuator_timeout passed"
    assert timeout_calls(comm) > calls_while_flowing
    assert wait_until(lambda: comm.overruns()["watchdog_trips"] == 1, 2.0), comm.overruns()


def test_overrun_counts_are_readable_from_the_parent(comms):
    comm = comms(SlowHandler, handler_s=0.03, rate_hz=100.0)  # handler takes 30 ms of a 10 ms period
    assert comm.overruns()["sensor_overruns"] == 0
    comm.start()
    assert wait_until(lambda: comm.overruns()["sensor_overruns"] >= 3, 10.0), comm.overruns()
    counts = comm.overruns()
    assert set(counts) >= {"sensor_overruns", "actuator_overruns", "sensor_cycles", "actuator_cycles"}
    assert counts["sensor_cycles"] >= 1


@pytest.mark.parametrize("kwargs, match", [
    ({"sensor_rate_hz": 0}, "sensor_rate_hz=0 must be a positive rate in Hz"),
    ({"actuator_rate_hz": -5.0}, "actuator_rate_hz=-5.0 must be a positive rate in Hz"),
    ({"sensor_rate_hz": float("nan")}, "sensor_rate_hz=nan must be a positive rate in Hz"),
    ({"actuator_timeout": 0}, "actuator_timeout=0 must be positive seconds"),
    ({"actuator_timeout": -1.0}, "actuator_timeout=-1.0 must be positive seconds"),
    ({"start_method": "threads"}, "start_method='threads'"),
], ids=["sensor-rate-zero", "actuator-rate-negative", "sensor-rate-nan", "timeout-zero", "timeout-negative",
        "unknown-start-method"])
def test_bad_rates_and_timeouts_fail_before_any_process_starts(kwargs, match):
    from communicators import Communicator

    children, segments = child_pids(), own_segments()
    with pytest.raises(ValueError, match=re.escape(match)):
        Communicator({"shape": (2,)}, {"shape": (2,)}, **kwargs)
    assert child_pids() == children and own_segments() == segments
