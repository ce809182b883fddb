"""SenseAct's Communicator and SharedBuffer over the core: SenseAct 0.1.x's behaviour, in real processes.

Each behaviour is SenseAct's as its public source has it (senseact/sharedbuffer.py,
senseact/communicator.py); the differences the module documents (monotonic timestamps, NaN/-1 for
slots never written, per-reader ``updated``) are tested as such.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from multiprocessing import Value

import numpy as np
import pytest

from communicators import CommunicatorError
from communicators.senseact import Communicator, SharedBuffer, wrap_positions
from tests.support.processes import child_pids, pid_alive, wait_for
from tests.support.senseact_style import ServoCommunicator

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def buffers():
    made = []

    def make(**kwargs) -> SharedBuffer:
        made.append(SharedBuffer(**kwargs))
        return made[-1]

    yield make
    for buf in made:
        buf.close()


@pytest.fixture
def comms():
    made = []

    def make(comm):
        made.append(comm)
        return comm

    yield make
    for comm in made:
        comm.close()


def vector(buffers, buffer_len=SharedBuffer.DEFAULT_BUFFER_LEN, **kwargs) -> SharedBuffer:
    return buffers(array_len=2, array_type="d", np_array_type="d", buffer_len=buffer_len, **kwargs)


# ----- SharedBuffer -----

def test_the_senseact_constructor_builds_flat_slots_of_the_numpy_type_with_ten_slots_by_default(buffers):
    buf = buffers(array_len=7, array_type="f", np_array_type="float32")
    assert buf.buffer_len == 10 and buf.array_len == 7 and buf.shape == (7,)
    assert buf.dtype == np.float32 and buf.array_type == "f" and buf.np_array_type == "float32"
    buf.write(np.arange(7))
    assert buf.read()[0][0].dtype == np.float32


def test_read_returns_senseact_lists_oldest_first_and_read_update_marks_them_read(buffers):
    buf = vector(buffers, buffer_len=2)
    buf.write([1, 2])
    buf.write([2, 3])
    data, stamps, indices = buf.read(2)
    assert isinstance(data, list) and isinstance(stamps, list) and isinstance(indices, list)
    np.testing.assert_array_equal(data, [[1, 2], [2, 3]])
    assert indices == [0, 1] and stamps[0] <= stamps[1]
    assert buf.updated(), "read() must not mark the data read"
    buf.read_update(2)
    assert not buf.updated()


def test_a_window_longer_than_the_buffer_wraps_round_it_as_senseacts_does(buffers):
    buf = vector(buffers, buffer_len=3)
    for row in ([1, 2], [2, 3], [3, 4], [4, 5]):
        buf.write(row)
    data, _, indices = buf.read_update(4)
    np.testing.assert_array_equal(data, [[4, 5], [2, 3], [3, 4], [4, 5]])  # SenseAct's own expectation
    assert indices == [3, 1, 2, 3] and not buf.updated()
    assert wrap_positions(4, 3) == [2, 0, 1, 2]


def test_updated_and_set_data_update_follow_senseacts_flag(buffers):
    buf = vector(buffers)
    assert buf.updated() == 0
    buf.write(np.zeros(2))
    assert buf.updated() == 1
    buf.read(1)
    assert buf.updated() == 1
    buf.read_update(1)
    assert buf.updated() == 0
    buf.set_data_update(1)
    assert buf.updated() == 1
    buf.set_data_update(0)
    assert buf.updated() == 0


def test_write_broadcasts_a_scalar_into_the_slot_as_np_copyto_does(buffers):
    buf = vector(buffers)
    buf.write(3)
    np.testing.assert_array_equal(buf.read()[0][0], [3.0, 3.0])
    buf.write(np.array([[5.0, 6.0]]))  # same size, other shape: stored flat
    np.testing.assert_array_equal(buf.read()[0][0], [5.0, 6.0])


@pytest.mark.parametrize("lock", [True, False])
def test_array_lock_is_accepted_either_way_and_writers_still_serialise(buffers, lock):
    buf = vector(buffers, array_lock=lock)
    assert buf.array_lock is lock
    ctx = multiprocessing.get_context("fork")
    writers = [ctx.Process(target=_write_many, args=(buf, 200)) for _ in range(2)]
    for proc in writers:
        proc.start()
    for proc in writers:
        proc.join(20)
    assert buf.num_writes == 400
    assert sorted(buf.read(10)[2]) == list(range(390, 400)), "indices must stay right with two writers"


def _write_many(buf: SharedBuffer, n: int) -> None:
    for i in range(n):
        buf.write([i, i])


def test_timestamps_are_monotonic_seconds_and_unwritten_slots_read_nan_and_minus_one(buffers):
    buf = vector(buffers, buffer_len=3)
    buf.write([1, 1])
    data, stamps, indices = buf.read(3)
    assert abs(stamps[-1] - time.monotonic()) < 1.0, "stamped on time.monotonic(), not time.time()"
    assert np.isnan(stamps[0]) and indices[:2] == [-1, -1]
    np.testing.assert_array_equal(data[0], [0, 0])


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_a_senseact_buffer_crosses_processes_under_every_start_method(buffers, method):
    buf = vector(buffers)
    proc = multiprocessing.get_context(method).Process(target=_write_many, args=(buf, 5))
    proc.start()
    proc.join(30)
    assert proc.exitcode == 0 and buf.num_writes == 5
    assert buf.read_update()[0][0].tolist() == [4.0, 4.0]


# ----- Communicator -----

def test_handlers_run_in_the_child_and_carry_sensor_data_and_commands(comms):
    servo = comms(ServoCommunicator())
    servo.start()
    wait_for(lambda: servo.sensor_buffer.num_writes > 5, what="sensor data")
    assert servo.is_ready()
    servo.actuator_buffer.write(2.0)
    wait_for(lambda: servo.velocity.value == 2.0, timeout=5, what="the command to reach the servo")
    wait_for(lambda: servo.sensor_buffer.read()[0][0][0] > 0.01, timeout=5, what="the servo to move")


def test_the_actuator_handler_runs_on_every_loop_before_any_command(comms):
    servo = comms(ServoCommunicator())
    servo.start()
    wait_for(lambda: servo.actuator_calls.value > 20, timeout=10, what="actuator handler calls without a command")
    assert servo.actuator_buffer.num_writes == 0


class _PollingHandler(Communicator):
    """Loops inside its handler on ``_actuator_running``, as SenseAct's UR communicator does."""

    def __init__(self):
        self.inside, self.left = Value("i", 0), Value("i", 0)
        super().__init__(None, {"array_len": 1, "array_type": "d", "np_array_type": "d"},
                         use_sensor=False, use_actuator=True)

    def _actuator_handler(self):
        self.inside.value = 1
        while self._actuator_running:
            time.sleep(0.001)
        self.left.value = 1


def test_a_handler_looping_on_actuator_running_is_let_out_at_close(comms):
    comm = comms(_PollingHandler())
    comm.start()
    wait_for(lambda: comm.inside.value, what="the handler to start")
    started = time.monotonic()
    comm.close()
    assert comm.left.value == 1 and time.monotonic() - started < 3.0
    assert not comm.is_alive()


def test_close_runs_the_senseact_close_hook_in_the_child(comms):
    servo = comms(ServoCommunicator())
    servo.start()
    wait_for(lambda: servo.sensor_buffer.num_writes > 0, what="sensor data")
    servo.actuator_buffer.write(1.0)
    wait_for(lambda: servo.velocity.value == 1.0, what="the command")
    servo.close()
    assert servo.closed.value == 1 and servo.velocity.value == 0.0


def test_terminate_then_join_stops_it_as_senseact_envs_do(comms):
    servo = comms(ServoCommunicator())
    servo.start()
    wait_for(lambda: servo.sensor_buffer.num_writes > 0, what="sensor data")
    pid = servo.pid
    servo.terminate()
    servo.join(5)
    assert not pid_alive(pid) and servo.closed.value == 1, "SIGTERM must stop it gracefully, _close included"


def test_a_crashing_handler_reports_its_traceback_to_the_parent(comms):
    flag = Value("i", 0)
    servo = comms(ServoCommunicator(crash_flag=flag))
    servo.start()
    wait_for(lambda: servo.sensor_buffer.num_writes > 0, what="sensor data")
    flag.value = 1
    servo.join(5)
    with pytest.raises(CommunicatorError, match="(?s)in _sensor_handler.*Exception: servo sensor failure on demand"):
        servo.raise_if_failed()


def test_a_communicator_without_handlers_stops_with_a_clear_error(comms):
    comm = comms(Communicator({"array_len": 1, "array_type": "d", "np_array_type": "d"},
                              {"array_len": 1, "array_type": "d", "np_array_type": "d"}))
    comm.start()
    comm.join(5)
    with pytest.raises(CommunicatorError, match="does not implement _sensor_handler"):
        comm.raise_if_failed()


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_senseact_communicator_runs_under_spawn_and_forkserver_too(comms, method):
    comm = comms(_Counter(start_method=method))
    comm.start()
    wait_for(lambda: comm.sensor_buffer.num_writes > 3, timeout=30, what=f"sensor data under {method}")
    assert comm.sensor_buffer.read()[0][0][0] != os.getpid()


class _Counter(Communicator):
    """A SenseAct communicator with no fork-only state, so any start method can run it."""

    def __init__(self, start_method):
        super().__init__({"array_len": 1, "array_type": "d", "np_array_type": "d"}, None, use_actuator=False,
                         start_method=start_method)

    def _sensor_handler(self):
        self.sensor_buffer.write(os.getpid())
        time.sleep(0.01)


def test_the_core_refuses_senseact_buffer_arguments_with_the_fix():
    from communicators import Communicator as Core

    before = child_pids()
    with pytest.raises(TypeError, match="derive from communicators.senseact.Communicator"):
        Core({"array_len": 1, "array_type": "d", "np_array_type": "d"}, None, use_actuator=False)
    assert child_pids() == before
