"""FrankaROSCommunicator end to end: real rosmaster, the MuJoCo bridge node, no mocks.

Each test starts a rosmaster on a free loopback port, the bridge node (`bridge_node.py`) as its own
process, and the communicator as its own process, then checks what the simulated arm did.
"""
from __future__ import annotations

import multiprocessing
import os
import re
import time

import numpy as np
import pytest
from ros_test_helpers import SHARED_MACHINE_STATE_TIMEOUT_S, requires_ros, ros_env_for, running_bridge, wait_for

from communicators.franka.kinematics import READY_POSE, fk, jacobian
from communicators.franka.safety import SafetyLimits
from communicators.franka.state import DQ, EE_POS, EE_QUAT, Q

pytestmark = [requires_ros, pytest.mark.timeout(120)]

RATE_HZ = 500.0  # bridge rate in most tests: gentler on a shared 2-core machine than 1 kHz


def _communicator(master, start_method=None, **overrides):
    from communicators.franka.ros.franka_ros_communicator import FrankaROSCommunicator, FrankaROSConfig

    overrides.setdefault("state_timeout", SHARED_MACHINE_STATE_TIMEOUT_S)
    config = FrankaROSConfig(master_uri=master.uri, ros_ip="127.0.0.1", transport="rospy",
                             **overrides)
    return FrankaROSCommunicator(config, start_method=start_method)


class _Running:
    """Start a communicator, wait for its first state, close it (and check it closed) at the end."""

    def __init__(self, comm):
        self.comm = comm

    def __enter__(self):
        self.comm.start()
        ok = wait_for(lambda: self.comm.sensor_buffer.num_writes > 0 or not self.comm.is_alive(), 20)
        self.comm.raise_if_failed()
        assert ok and self.comm.sensor_buffer.num_writes > 0, "no state from the bridge"
        return self.comm

    def __exit__(self, *exc):
        self.comm.close()
        assert not self.comm.is_alive()


def _drive(comm, dq_of_state, seconds, period=0.02):
    """Write commands computed from the latest state for `seconds`; returns the states seen."""
    states = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        state, _, _ = comm.sensor_buffer.latest()
        states.append(state.copy())
        comm.actuator_buffer.write(np.asarray(dq_of_state(state), dtype=np.float64))
        comm.raise_if_failed()
        time.sleep(period)
    return np.array(states)


def test_state_arrives_at_the_bridge_rate_in_the_shared_layout(ros_master):
    with running_bridge(ros_master, "--rate-hz", "1000"), _Running(_communicator(ros_master)) as comm:
        n0, t0 = comm.sensor_buffer.num_writes, time.monotonic()
        time.sleep(2.0)
        rate = (comm.sensor_buffer.num_writes - n0) / (time.monotonic() - t0)
        data, stamps, _ = comm.sensor_buffer.read(window_len=8)
    assert rate > 0.5 * 1000, f"state rate {rate:.0f} Hz, bridge publishes 1000 Hz"
    assert np.all(np.diff(stamps) > 0) and stamps[-1] <= time.monotonic()
    state = data[-1]
    pos, rot = fk(state[Q])
    np.testing.assert_allclose(state[Q], READY_POSE, atol=0.02)
    np.testing.assert_allclose(state[DQ], 0.0, atol=0.05)
    np.testing.assert_allclose(state[EE_POS], pos, atol=0.002)
    w, x, y, z = state[EE_QUAT]
    assert np.linalg.norm(state[EE_QUAT]) == pytest.approx(1.0, abs=1e-9)
    # The TCP's z axis from the quaternion matches the kinematics' (gripper pointing down).
    z_axis = [2 * (x * z + y * w), 2 * (y * z - x * w), 1 - 2 * (x * x + y * y)]
    np.testing.assert_allclose(z_axis, rot[:, 2], atol=0.01)


@pytest.mark.parametrize("start_method", ["fork", "spawn", "forkserver"])
def test_velocity_commands_move_the_simulated_arm(ros_master, start_method):
    with running_bridge(ros_master, "--rate-hz", str(RATE_HZ)), \
            _Running(_communicator(ros_master, start_method)) as comm:
        q0 = comm.sensor_buffer.latest()[0][Q].copy()
        cmd = np.array([0.2, 0, 0, 0, 0, 0, -0.2])
        states = _drive(comm, lambda s: cmd, seconds=1.0)
        moved = comm.sensor_buffer.latest()[0][Q] - q0
    assert moved[0] == pytest.approx(0.2, abs=0.08)
    assert moved[6] == pytest.approx(-0.2, abs=0.08)
    assert np.all(np.abs(moved[1:6]) < 0.03)
    assert np.median(states[len(states) // 2:, 7]) == pytest.approx(0.2, abs=0.03)


def test_an_fr3_with_its_own_joint_names_is_read_and_commanded_by_name(ros_master):
    with running_bridge(ros_master, "--rate-hz", str(RATE_HZ), "--arm-id", "fr3"), \
            _Running(_communicator(ros_master)) as comm:
        q0 = comm.sensor_buffer.latest()[0][Q].copy()
        _drive(comm, lambda s: [0, 0, 0, 0, 0, 0.2, 0], seconds=0.8)
        moved = comm.sensor_buffer.latest()[0][Q] - q0
    np.testing.assert_allclose(q0, READY_POSE, atol=0.02)
    assert moved[5] > 0.08 and np.all(np.abs(np.delete(moved, 5)) < 0.03)


def test_a_stale_command_becomes_zero_velocity(ros_master):
    with running_bridge(ros_master, "--rate-hz", str(RATE_HZ)), \
            _Running(_communicator(ros_master, actuator_timeout=0.1)) as comm:
        q0 = comm.sensor_buffer.latest()[0][Q].copy()
        comm.actuator_buffer.write(np.array([0.3, 0, 0, 0, 0, 0, 0]))  # once, then silence
        moving = wait_for(lambda: comm.sensor_buffer.latest()[0][7] > 0.1, 2.0)
        time.sleep(0.6)
        state = comm.sensor_buffer.latest()[0]
        q1 = state[Q].copy()
        time.sleep(0.3)
        q2 = comm.sensor_buffer.latest()[0][Q]
    assert moving, "the single command never moved the arm"
    np.testing.assert_allclose(state[DQ], 0.0, atol=0.02)
    np.testing.assert_allclose(q2, q1, atol=0.005)
    # 0.1 s of watchdog at 0.3 rad/s, plus transport and actuator-period slack.
    assert q1[0] - q0[0] < 0.1


def test_joint_limits_hold_against_a_command_into_the_limit(ros_master):
    limits = SafetyLimits()
    start = READY_POSE.copy()
    start[0] = limits.joint_pos_high[0] - 0.15
    with running_bridge(ros_master, "--rate-hz", str(RATE_HZ), "--initial-qpos",
                        *map(str, start)), \
            _Running(_communicator(ros_master, safety=limits)) as comm:
        states = _drive(comm, lambda s: [0.8, 0, 0, 0, 0, 0, 0], seconds=2.0)
    assert states[:, 0].max() <= limits.joint_pos_high[0] + 0.01
    assert states[:, 0].max() > limits.joint_pos_high[0] - 0.05, "the arm never approached it"


def test_velocity_limits_hold_so_the_robot_never_reflexes(ros_master):
    limits = SafetyLimits()
    with running_bridge(ros_master, "--rate-hz", str(RATE_HZ)) as bridge, \
            _Running(_communicator(ros_master, safety=limits)) as comm:
        # 10 rad/s would trip the robot's own velocity reflex (datasheet limit 2.61 rad/s).
        states = _drive(comm, lambda s: [0, 0, 0, 0, 0, 0, 10.0], seconds=0.6)
        stats = comm.stats()
    assert np.abs(states[:, 13]).max() <= limits.max_joint_velocity[6] + 0.05
    assert np.abs(states[-5:, 13]).max() > 0.5 * limits.max_joint_velocity[6]
    assert stats["reflexes"] == 0, "the robot reported a reflex"
    assert any("reflexes=0" in line for line in bridge.output)


def test_the_workspace_box_stops_the_tcp_at_its_wall(ros_master):
    x_wall = float(fk(READY_POSE)[0][0]) + 0.04
    limits = SafetyLimits(workspace_high=np.array([x_wall, 0.45, 0.8]))

    def toward_wall(state):  # 0.2 m/s along +x, through the position Jacobian
        return np.linalg.pinv(jacobian(state[Q])[:3]) @ np.array([0.2, 0.0, 0.0])

    with running_bridge(ros_master, "--rate-hz", str(RATE_HZ)), \
            _Running(_communicator(ros_master, safety=limits)) as comm:
        states = _drive(comm, toward_wall, seconds=2.0)
    assert states[:, 14].max() <= x_wall + 0.01
    assert states[:, 14].max() > x_wall - 0.02, "the TCP never approached the wall"


def _publish_too_fast_command(ros_env: dict, topic: str) -> None:
    # Runs in a child process: the test process itself never becomes a ROS node.
    os.environ.update(ros_env)
    import rospy

    from communicators.franka.ros.msg_loader import load_franka_msgs

    msgs = load_franka_msgs()
    rospy.init_node("rogue_commander", anonymous=True, disable_signals=True)
    pub = rospy.Publisher(topic, msgs.JointCommand, queue_size=1)
    deadline = time.monotonic() + 10
    while pub.get_num_connections() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    pub.publish(msgs.JointCommand(mode=msgs.JointCommand.VELOCITY_MODE, velocity=[5.0] * 7,
                                  names=[f"panda_joint{i}" for i in range(1, 8)]))
    time.sleep(0.5)
    rospy.signal_shutdown("done")


def test_a_reflex_is_reported_and_recovered_automatically(ros_master):
    from communicators.franka.ros import topics as T

    with running_bridge(ros_master, "--rate-hz", str(RATE_HZ)) as bridge, \
            _Running(_communicator(ros_master, recovery_interval=0.3)) as comm:
        rogue = multiprocessing.get_context("fork").Process(
            target=_publish_too_fast_command,
            args=(ros_env_for(ros_master), T.FrankaTopics().joint_commands))
        rogue.start()
        rogue.join(30)
        assert rogue.exitcode == 0
        assert wait_for(lambda: comm.stats()["reflexes"] >= 1, 5.0), "no reflex seen"
        assert wait_for(lambda: comm.stats()["robot_mode"] != T.ROBOT_MODE_REFLEX, 5.0)
        assert comm.stats()["recovery_requests"] >= 1
        # Motion works again after the recovery.
        q0 = comm.sensor_buffer.latest()[0][Q].copy()
        _drive(comm, lambda s: [0, 0, 0, 0, 0, 0, 0.3], seconds=0.8)
        assert comm.sensor_buffer.latest()[0][6] - q0[6] > 0.1
    assert wait_for(lambda: any("recoveries=1" in line for line in bridge.output), 5.0)


def test_no_robot_on_the_graph_fails_with_an_error_naming_the_topic(ros_master):
    from communicators.errors import CommunicatorError

    comm = _communicator(ros_master, connect_timeout=1.0)
    errors: list[Exception] = []

    def failed() -> bool:
        try:
            comm.raise_if_failed()
        except CommunicatorError as exc:
            errors.append(exc)
            return True
        return False

    comm.start()
    try:
        assert wait_for(failed, 20), "the communicator did not report a failure"
    finally:
        comm.close()
    assert "custom_franka_state_controller/joint_states" in str(errors[0])
    assert "within 1.0 s" in str(errors[0])


def test_config_rejects_a_missing_master_and_an_unknown_transport(monkeypatch):
    from communicators.franka.ros.franka_ros_communicator import FrankaROSConfig

    monkeypatch.delenv("ROS_MASTER_URI", raising=False)
    with pytest.raises(ValueError, match=re.escape("pass master_uri= or set ROS_MASTER_URI")):
        FrankaROSConfig()
    with pytest.raises(ValueError, match=re.escape("not one of ['auto', 'arm_interface', 'rospy']")):
        FrankaROSConfig(master_uri="http://127.0.0.1:11311", transport="ros2")
    with pytest.raises(ValueError, match="actuator_timeout=0.01 s is shorter than two"):
        FrankaROSConfig(master_uri="http://127.0.0.1:11311", actuator_timeout=0.01)
