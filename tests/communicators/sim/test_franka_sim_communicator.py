"""The simulated arm as a real child process: physics, safety filter, watchdog, shutdown."""
import glob
import os
import re
import time

import numpy as np
import pytest

from communicators.franka.kinematics import READY_POSE, jacobian
from communicators.franka.safety import SafetyLimits
from communicators.franka.state import DQ, EE_POS, Q, STATE_DIM
from communicators.shared_buffer import SEGMENT_PREFIX
from communicators.sim.physics.franka_physics import FrankaPhysicsConfig
from communicators.sim.franka_sim_communicator import FrankaSimCommunicator, FrankaSimConfig
from tests.support.processes import wait_for

pytestmark = pytest.mark.timeout(60)


def _segments():
    return set(glob.glob(f"/dev/shm/{SEGMENT_PREFIX}{os.getpid()}_*"))


def _wait_for(condition, timeout=10.0, what="condition"):
    return wait_for(condition, timeout, what)


def _state(arm):
    data, ts, _ = arm.sensor_buffer.latest()
    return data, ts


def _drive(arm, command_fn, seconds, period=0.02):
    """Write command_fn(state) every `period` s for `seconds`, like an env; returns the states seen."""
    states = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        state, _ = _state(arm)
        states.append(state)
        arm.actuator_buffer.write(command_fn(state))
        arm.raise_if_failed()
        time.sleep(period)
    return np.array(states)


@pytest.fixture
def make_arm():
    arms = []

    def make(**kwargs):
        arm = FrankaSimCommunicator(FrankaSimConfig(**kwargs))
        arm.start()
        arms.append(arm)
        _wait_for(lambda: arm.sensor_buffer.num_writes > 0, what="the first state")
        return arm

    yield make
    for arm in arms:
        arm.close()


def test_joint_velocities_follow_the_command(make_arm):
    arm = make_arm()
    command = np.array([0.2, -0.1, 0.15, 0.2, -0.2, 0.2, 0.3])
    states = _drive(arm, lambda s: command, seconds=1.0)
    late = states[len(states) // 2:]  # after the servos settled
    assert np.abs(late[:, DQ] - command).max() < 0.01
    assert np.all(np.diff(late[:, Q][:, 0]) >= 0)  # joint 1 keeps moving the commanded way


def test_state_is_published_continuously_with_increasing_timestamps(make_arm):
    arm = make_arm()
    first = arm.sensor_buffer.num_writes
    time.sleep(0.5)
    data, timestamps, indices = arm.sensor_buffer.read(window_len=8)
    assert arm.sensor_buffer.num_writes > first + 10
    assert data.shape == (8, STATE_DIM)
    assert np.all(np.diff(timestamps) > 0) and np.all(np.diff(indices) == 1)
    assert abs(time.monotonic() - timestamps[-1]) < 0.5  # stamped on the monotonic clock


def test_watchdog_stops_the_arm_when_commands_stop(make_arm):
    arm = make_arm(watchdog_timeout=0.1)
    _drive(arm, lambda s: np.full(7, 0.2), seconds=0.3)
    assert np.abs(_state(arm)[0][DQ]).max() > 0.1  # it was moving
    stopped_at = time.monotonic()
    _wait_for(lambda: np.abs(_state(arm)[0][DQ]).max() < 1e-3, timeout=5.0, what="zero velocity")
    assert time.monotonic() - stopped_at < 2.0
    q_rest = _state(arm)[0][Q]
    time.sleep(0.3)
    np.testing.assert_allclose(_state(arm)[0][Q], q_rest, atol=1e-3)


def test_a_single_stale_command_never_moves_the_arm(make_arm):
    arm = make_arm(watchdog_timeout=0.1)
    arm.actuator_buffer.write(np.full(7, 0.5), timestamp=time.monotonic() - 1.0)
    time.sleep(0.3)
    np.testing.assert_allclose(_state(arm)[0][Q], READY_POSE, atol=1e-3)


def test_joint_driven_into_its_limit_stops_at_the_soft_limit(make_arm):
    limits = SafetyLimits()
    start = READY_POSE.copy()
    start[6] = limits.joint_pos_high[6] - 0.3
    arm = make_arm(physics=FrankaPhysicsConfig(initial_qpos=start))
    states = _drive(arm, lambda s: np.array([0, 0, 0, 0, 0, 0, 1.0]), seconds=1.5)
    assert states[:, Q][:, 6].max() <= limits.joint_pos_high[6] + 0.01
    assert states[-1, Q][6] > limits.joint_pos_high[6] - 0.02  # it did reach the limit


def test_joint_started_past_its_soft_limit_is_pushed_back_inside(make_arm):
    limits = SafetyLimits()
    start = READY_POSE.copy()
    start[6] = limits.joint_pos_high[6] + 0.05
    arm = make_arm(physics=FrankaPhysicsConfig(initial_qpos=start))
    _wait_for(lambda: _state(arm)[0][Q][6] <= limits.joint_pos_high[6] + 0.005, timeout=5.0,
              what="joint 7 back inside its soft limit")


def test_tcp_outside_the_workspace_box_is_pushed_back_in(make_arm):
    # The ready pose's TCP is at z = 0.487 m: a box floor at 0.55 m leaves it outside.
    limits = SafetyLimits(workspace_low=np.array([0.2, -0.45, 0.55]))
    arm = make_arm(safety=limits)

    def down(state):
        return np.linalg.pinv(jacobian(state[Q])[:3]) @ np.array([0.0, 0.0, -0.1])

    states = _drive(arm, down, seconds=2.0)  # pushing further out, all along
    heights = states[:, EE_POS][:, 2]
    assert heights[-1] > heights[0] + 0.03
    assert heights[-1] >= 0.55 - 0.01


def test_tcp_driven_down_stops_at_the_workspace_floor(make_arm):
    arm = make_arm()
    floor = SafetyLimits().workspace_low[2]

    def down(state):
        return np.linalg.pinv(jacobian(state[Q])[:3]) @ np.array([0.0, 0.0, -0.3])

    states = _drive(arm, down, seconds=2.5)
    heights = states[:, EE_POS][:, 2]
    assert heights.min() >= floor - 0.005
    assert heights[-1] < floor + 0.02  # it got there


@pytest.mark.skipif(os.geteuid() != 0, reason="SCHED_FIFO needs root")
def test_physics_thread_under_sched_fifo_still_follows_commands(make_arm):
    arm = make_arm(fifo_priority=10)
    command = np.full(7, 0.1)
    states = _drive(arm, lambda s: command, seconds=0.6)
    assert np.abs(states[-5:, DQ] - command).max() < 0.01


def test_stats_report_real_time_factor_and_steps(make_arm):
    arm = make_arm()
    time.sleep(0.5)
    stats = _wait_for(lambda: (s := arm.stats())["physics_steps"] > 100 and s, what="stats")
    assert 0.5 < stats["real_time_factor"] < 1.5  # loose: a sanity check, figures are benchmarked
    assert stats["lateness_ms"] >= 0.0


def test_close_leaves_no_process_or_shared_memory_behind():
    before = _segments()
    arm = FrankaSimCommunicator()
    arm.start()
    _wait_for(lambda: arm.sensor_buffer.num_writes > 0, what="the first state")
    assert len(_segments() - before) >= 3  # sensor, actuator and stats buffers exist
    arm.close()
    arm.close()  # idempotent
    assert not arm.is_alive()
    assert _segments() - before == set()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"publish_rate_hz": 1000.0}, "publish_rate_hz=1000.0 must be in [1, 500] Hz"),
        ({"watchdog_timeout": 0.0}, "watchdog_timeout=0.0 s must be positive"),
        ({"safety": {"workspace_low": 0}}, "FrankaSimConfig.safety must be a SafetyLimits"),
        ({"sensor_buffer_len": 0}, "sensor_buffer_len=0 must be a positive integer"),
        ({"fifo_priority": 100}, "fifo_priority=100 must be None or an int in 1..99"),
    ],
    ids=["rate-above-physics", "no-watchdog", "safety-not-limits", "empty-buffer", "fifo-range"],
)
def test_invalid_config_is_rejected_before_any_process_starts(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=re.escape(message)):
        FrankaSimConfig(**kwargs)
