"""Pure task rules: action scaling and checks, the joint subsets, proprioception, home pose, axis."""
import re

import numpy as np
import pytest

from communicators.franka.kinematics import fk
from communicators.franka.safety import SafetyFilter
from communicators.franka.kinematics import quat_wxyz_to_rotmat
from rtrl_env.reacher.ground_truth import WristCameraGeometry, distance_to_axis
from rtrl_env.reacher.joints import (ALL_JOINTS, HOME_POSE, TWO_JOINTS, ActionScaler, check_joints,
                                     jittered_home, proprioception)

pytestmark = pytest.mark.timeout(30)


def test_action_one_maps_to_max_velocity_and_unused_joints_hold_still():
    scaler = ActionScaler(joints=TWO_JOINTS, max_joint_velocity=0.3)
    dq = scaler.to_joint_velocity(np.array([1.0, -1.0]))
    np.testing.assert_allclose(dq, [0.3, 0, 0, -0.3, 0, 0, 0])
    full = ActionScaler(joints=ALL_JOINTS, max_joint_velocity=0.3)
    np.testing.assert_allclose(full.to_joint_velocity(np.full(7, 0.5)), np.full(7, 0.15))


def test_float32_rounding_at_the_bounds_is_accepted():
    scaler = ActionScaler(joints=TWO_JOINTS)
    dq = scaler.to_joint_velocity(np.array([1.0000001, -1.0], np.float32))
    assert abs(dq[0]) <= scaler.max_joint_velocity


def test_bad_joint_subsets_and_speeds_are_refused():
    with pytest.raises(ValueError, match=re.escape("expected distinct joint numbers in 0..6")):
        check_joints((0, 7))
    with pytest.raises(ValueError, match="distinct"):
        check_joints((1, 1))
    with pytest.raises(ValueError, match=re.escape("max_joint_velocity=5.0 rad/s")):
        ActionScaler(max_joint_velocity=5.0)


def test_proprioception_is_float32_q_dq_previous_action():
    p = proprioception(np.arange(7.0), -np.arange(7.0), np.array([0.5, -0.5]))
    assert p.dtype == np.float32 and p.shape == (16,)
    np.testing.assert_allclose(p[:7], np.arange(7)) and np.testing.assert_allclose(p[14:], [.5, -.5])


def test_jitter_moves_only_the_task_joints_within_bounds():
    rng = np.random.default_rng(0)
    goals = np.array([jittered_home(rng, TWO_JOINTS, 0.1) for _ in range(200)])
    delta = goals - HOME_POSE
    assert np.all(np.abs(delta) <= 0.1)
    assert np.all(delta[:, [1, 2, 4, 5, 6]] == 0.0)
    assert delta[:, 0].std() > 0.03 and delta[:, 3].std() > 0.03


def test_home_pose_is_safe_and_the_wrist_camera_looks_down_at_the_monitor_centre():
    assert SafetyFilter().tcp_inside_workspace(HOME_POSE)
    origin, direction = WristCameraGeometry.from_sim_scene().axis_from_rotmat(*fk(HOME_POSE))
    np.testing.assert_allclose(direction, [0, 0, -1], atol=1e-3)
    assert distance_to_axis(origin, direction, np.array([0.5, 0.0, 0.0])) < 0.005
    assert 0.3 < origin[2] < 0.5  # camera height above the monitor (m)


def test_distance_to_axis_is_perpendicular_and_behind_the_camera_counts_fully():
    origin, direction = np.zeros(3), np.array([0.0, 0.0, -1.0])
    assert distance_to_axis(origin, direction, np.array([0.03, 0.04, -1.0])) == pytest.approx(0.05)
    assert distance_to_axis(origin, direction, np.array([0.0, 0.0, 2.0])) == pytest.approx(2.0)


def test_quaternion_matches_the_kinematics_rotation():
    import mujoco
    _, rot = fk(HOME_POSE)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, rot.flatten())
    np.testing.assert_allclose(quat_wxyz_to_rotmat(quat), rot, atol=1e-9)
