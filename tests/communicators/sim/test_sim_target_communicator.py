"""Sim target communicator: a real child process publishing through real shared memory."""
import glob
import multiprocessing
import os
import re
import time

import numpy as np
import pytest

from communicators.errors import CommunicatorError
from communicators.sim.sim_target_communicator import SimTargetCommunicator
from communicators.target.target_motion import TargetConfig, TargetMotion

pytestmark = pytest.mark.timeout(60)


def _wait_for(condition, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


def _segments():
    return set(glob.glob(f"/dev/shm/rtrl_{os.getpid()}_*"))


@pytest.fixture
def running():
    """Starts communicators and always closes them; checks nothing outlives the test."""
    segments_before = _segments()
    started = []

    def start(config, start_method=None):
        comm = SimTargetCommunicator(config, start_method=start_method)
        started.append(comm)
        comm.start()
        _wait_for(lambda: comm.sensor_buffer.num_writes > 0, what="the first target position")
        return comm

    yield start
    for comm in started:
        comm.close()
    _wait_for(lambda: not multiprocessing.active_children(), timeout=5, what="children to exit")
    assert _segments() == segments_before, "shared-memory segments left behind"


def _samples(comm, duration):
    """(positions (n, 3), timestamps (n,)) polled for `duration` seconds."""
    positions, stamps = [], []
    end = time.monotonic() + duration
    while time.monotonic() < end:
        data, ts, _ = comm.sensor_buffer.read(window_len=1)
        positions.append(data[-1].copy())
        stamps.append(ts[-1])
        time.sleep(0.01)
    return np.array(positions), np.array(stamps)


def _expected_start(config, episode):
    motion = TargetMotion(config)
    motion.new_episode(config.episode_rng(episode))
    return motion.position(0.0)


@pytest.mark.parametrize("start_method", ["fork", "spawn", "forkserver"])
def test_reaching_target_holds_still_and_moves_to_the_requested_episodes_position(running, start_method):
    config = TargetConfig(mode="reaching", seed=11)
    comm = running(config, start_method)
    positions, stamps = _samples(comm, 0.3)
    assert comm.sensor_buffer.latest()[0].dtype == np.float64
    assert np.all(np.diff(stamps) >= 0), "timestamps went backwards"
    np.testing.assert_array_equal(positions, np.tile(_expected_start(config, 0), (len(positions), 1)))

    for episode in (1, 2):
        expected = _expected_start(config, episode)
        comm.actuator_buffer.write(np.array([float(episode)]))
        _wait_for(lambda: np.array_equal(comm.sensor_buffer.latest()[0], expected),
                  what=f"episode {episode}'s target")
        positions, _ = _samples(comm, 0.2)
        np.testing.assert_array_equal(positions, np.tile(expected, (len(positions), 1)))
    comm.raise_if_failed()


def test_tracking_target_moves_inside_the_box_no_faster_than_its_speed(running):
    config = TargetConfig(mode="tracking", speed=0.5, seed=5, rate_hz=200.0)
    comm = running(config)
    positions, stamps = _samples(comm, 1.0)
    low, high = np.array(config.low), np.array(config.high)
    assert np.all(positions >= low - 1e-12) and np.all(positions <= high + 1e-12)
    travelled = np.linalg.norm(positions[-1] - positions[0])
    assert travelled > 0.05, "tracking target barely moved in a second at 0.5 m/s"
    fresh = np.diff(stamps) > 0
    speeds = np.linalg.norm(np.diff(positions, axis=0), axis=1)[fresh] / np.diff(stamps)[fresh]
    assert np.all(speeds <= config.speed * (1 + 1e-6))

    first_of_episode_1 = _expected_start(config, 1)
    comm.actuator_buffer.write(np.array([1.0]))
    # Right after the request the target is within a few publish periods of episode 1's start.
    _wait_for(lambda: np.linalg.norm(comm.sensor_buffer.latest()[0] - first_of_episode_1) < 0.05,
              what="the tracking target to restart at episode 1's start")


def test_static_target_stays_at_its_position_across_episodes(running):
    config = TargetConfig(mode="static", static_position=(0.4, -0.1, 0.0))
    comm = running(config)
    comm.actuator_buffer.write(np.array([3.0]))
    positions, _ = _samples(comm, 0.3)
    np.testing.assert_array_equal(positions, np.tile([0.4, -0.1, 0.0], (len(positions), 1)))


def test_a_malformed_episode_request_reaches_the_parent_as_an_error(running):
    comm = running(TargetConfig())
    comm.actuator_buffer.write(np.array([1.5]))

    def failed():
        try:
            comm.raise_if_failed()
        except CommunicatorError as exc:
            failed.error = exc
            return True
        return False

    _wait_for(failed, what="the child to report the bad request")
    assert re.search(r"target episode request 1\.5 is not a whole number", str(failed.error))


def test_default_box_lies_on_the_sim_monitor_where_the_target_disc_rests():
    import mujoco

    from communicators.sim.physics import scene

    model = scene.build_model()
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    monitor = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "monitor")
    centre, half = data.geom_xpos[monitor], model.geom_size[monitor]
    config = TargetConfig()
    assert np.all(np.array(config.low[:2]) >= centre[:2] - half[:2])
    assert np.all(np.array(config.high[:2]) <= centre[:2] + half[:2])
    target = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, scene.TARGET_BODY)
    assert config.low[2] == pytest.approx(data.xpos[target][2])
