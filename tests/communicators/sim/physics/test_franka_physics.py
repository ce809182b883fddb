"""Real MuJoCo physics of the arm under joint-velocity control."""
import re

import numpy as np
import pytest

from communicators.franka.kinematics import READY_POSE, fk
from communicators.sim.physics.franka_physics import FrankaPhysics, FrankaPhysicsConfig

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def physics():
    return FrankaPhysics()


COMMANDS = {
    "all-joints": np.array([0.3, -0.2, 0.25, 0.3, -0.4, 0.3, 0.6]),
    "shoulder-only": np.array([0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    "wrist-only": np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0]),
    "slow": np.full(7, 0.02),
}


@pytest.mark.parametrize("dq_cmd", COMMANDS.values(), ids=COMMANDS.keys())
def test_joint_velocities_track_the_command_within_0_01_rad_per_s(physics, dq_cmd):
    physics.reset()
    physics.set_joint_velocity(dq_cmd)
    physics.step(int(0.1 / physics.timestep))  # settle
    worst = 0.0
    for _ in range(40):  # 0.4 s more, checked every 10 ms
        physics.step(int(0.01 / physics.timestep))
        worst = max(worst, np.abs(physics.state().dq - dq_cmd).max())
    assert worst < 0.01


def test_arm_holds_still_under_gravity_with_zero_command(physics):
    physics.reset()
    physics.set_joint_velocity(np.zeros(7))
    physics.step(int(2.0 / physics.timestep))
    state = physics.state()
    np.testing.assert_allclose(state.q, READY_POSE, atol=1e-3)
    assert np.abs(state.dq).max() < 1e-3


def test_arm_stops_within_0_2_s_after_a_zero_command(physics):
    physics.reset()
    physics.set_joint_velocity(np.full(7, 0.5))
    physics.step(int(0.3 / physics.timestep))
    physics.set_joint_velocity(np.zeros(7))
    physics.step(int(0.2 / physics.timestep))
    assert np.abs(physics.state().dq).max() < 0.01


def test_state_reports_the_tcp_pose_of_the_current_joint_angles(physics):
    physics.reset()
    physics.set_joint_velocity(COMMANDS["all-joints"])
    physics.step(137)
    state = physics.state()
    pos, rot = fk(state.q)
    np.testing.assert_allclose(state.ee_pos, pos, atol=1e-9)
    w, x, y, z = state.ee_quat
    assert abs(np.linalg.norm(state.ee_quat) - 1.0) < 1e-9
    # z column of the rotation matrix from the quaternion
    np.testing.assert_allclose(
        [2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)], rot[:, 2], atol=1e-9
    )


def test_reset_puts_the_arm_at_rest_at_the_given_angles(physics):
    q = READY_POSE + 0.2
    physics.set_joint_velocity(np.full(7, 0.3))
    physics.step(50)
    physics.reset(q)
    state = physics.state()
    np.testing.assert_allclose(state.q, q)
    assert not state.dq.any()
    assert physics.sim_time == 0.0


def test_hardware_joint_limits_hold_in_physics_without_the_safety_filter(physics):
    physics.reset()
    physics.set_joint_velocity(np.array([0, 0, 0, 0, 0, 0, 2.0]))
    physics.step(int(3.0 / physics.timestep))
    assert physics.state().q[6] < 2.8973 + 0.02


def test_bad_inputs_raise_clear_errors(physics):
    with pytest.raises(ValueError, match=re.escape("must be in (0, 0.002]")):
        FrankaPhysicsConfig(timestep=0.01)
    with pytest.raises(ValueError, match="outside the Panda's joint limits"):
        physics.reset(np.full(7, 3.5))
    with pytest.raises(ValueError, match="7 finite numbers in rad/s"):
        physics.set_joint_velocity(np.array([np.nan] * 7))
