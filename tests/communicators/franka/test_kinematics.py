"""FK and Jacobian against MuJoCo's own kinematics of the sim scene."""
import re

import communicators.sim.physics  # noqa: F401  (first: sets MUJOCO_GL=egl before mujoco loads)
import mujoco
import numpy as np
import pytest

from communicators.franka.kinematics import (READY_POSE, fk, fk_and_jacobian, jacobian, quat_wxyz_to_rotmat,
                                            rotmat_to_quat_wxyz)
from communicators.franka.safety import PANDA_JOINT_POS_MAX, PANDA_JOINT_POS_MIN
from communicators.sim.physics import scene

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def model_and_data():
    model = scene.build_model()
    return model, mujoco.MjData(model)


def _random_configs(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(PANDA_JOINT_POS_MIN, PANDA_JOINT_POS_MAX, size=(n, 7))


def test_fk_matches_mujoco_end_effector_site_over_the_joint_range(model_and_data):
    model, data = model_and_data
    qpos_adr, _, _ = scene.arm_indices(model)
    site = model.site(scene.EE_SITE).id
    for q in _random_configs(100):
        data.qpos[qpos_adr] = q
        mujoco.mj_kinematics(model, data)
        pos, rot = fk(q)
        np.testing.assert_allclose(pos, data.site_xpos[site], atol=1e-9)
        np.testing.assert_allclose(rot, data.site_xmat[site].reshape(3, 3), atol=1e-9)


def test_ready_pose_points_the_gripper_straight_down_in_front_of_the_base():
    pos, rot = fk(READY_POSE)
    np.testing.assert_allclose(pos, [0.307, 0.0, 0.4866], atol=1e-3)
    np.testing.assert_allclose(rot[:, 2], [0.0, 0.0, -1.0], atol=1e-9)


def test_jacobian_matches_mujoco_site_jacobian(model_and_data):
    model, data = model_and_data
    qpos_adr, dof_adr, _ = scene.arm_indices(model)
    site = model.site(scene.EE_SITE).id
    jacp, jacr = np.zeros((3, model.nv)), np.zeros((3, model.nv))
    for q in _random_configs(20, seed=1):
        data.qpos[qpos_adr] = q
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        mujoco.mj_jacSite(model, data, jacp, jacr, site)
        jac = jacobian(q)
        np.testing.assert_allclose(jac[:3], jacp[:, dof_adr], atol=1e-9)
        np.testing.assert_allclose(jac[3:], jacr[:, dof_adr], atol=1e-9)


def test_jacobian_position_rows_match_finite_differences_of_fk():
    q = READY_POSE + 0.3
    eps = 1e-6
    numeric = np.stack(
        [(fk(q + eps * e)[0] - fk(q - eps * e)[0]) / (2 * eps) for e in np.eye(7)], axis=1
    )
    np.testing.assert_allclose(jacobian(q)[:3], numeric, atol=1e-7)


def test_flange_is_a_hand_tcp_offset_behind_the_tcp():
    pos_tcp, rot = fk(READY_POSE)
    pos_flange, _ = fk(READY_POSE, tool_offset=0.0)
    np.testing.assert_allclose(pos_tcp - pos_flange, 0.1034 * rot[:, 2], atol=1e-12)


def test_wrong_number_of_joints_raises_a_clear_error():
    with pytest.raises(ValueError, match=re.escape("shape (9,), expected (7,)")):
        fk(np.zeros(9))
    with pytest.raises(ValueError, match="no finger joints"):
        jacobian(np.zeros(9))


def test_fk_and_jacobian_in_one_pass_equals_the_separate_calls():
    q = READY_POSE - 0.4
    pos, rot, jac = fk_and_jacobian(q, tool_offset=0.05)
    np.testing.assert_array_equal(pos, fk(q, tool_offset=0.05)[0])
    np.testing.assert_array_equal(rot, fk(q, tool_offset=0.05)[1])
    np.testing.assert_array_equal(jac, jacobian(q, tool_offset=0.05))


@pytest.mark.parametrize("seed", range(5))
def test_quaternion_and_rotation_matrix_round_trip(seed):
    quat = np.random.default_rng(seed).normal(size=4)
    quat /= np.linalg.norm(quat)
    quat *= np.sign(quat[0])  # the w >= 0 convention
    np.testing.assert_allclose(rotmat_to_quat_wxyz(quat_wxyz_to_rotmat(quat)), quat, atol=1e-12)


def test_half_turn_about_x_has_the_w_positive_sign_convention():
    np.testing.assert_allclose(rotmat_to_quat_wxyz(np.diag([1.0, -1.0, -1.0])), [0, 1, 0, 0], atol=1e-12)
