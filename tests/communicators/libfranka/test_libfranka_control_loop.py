"""Pure parts of the control loop: pose -> quaternion and the state-vector layout."""
import numpy as np
import pytest

from communicators.franka_state import EE_POS, EE_QUAT, Q, STATE_DIM
from communicators.libfranka.libfranka_control_loop import quat_wxyz_from_column_major, state_vector

pytestmark = pytest.mark.timeout(10)


def _column_major(rotation, position):
    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = rotation, position
    return pose.T.reshape(16)  # libfranka's O_T_EE is column-major


def _rotation_from_quat(w, x, y, z):
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


@pytest.mark.parametrize("seed", range(5))
def test_quaternion_round_trips_through_a_column_major_pose(seed):
    quat = np.random.default_rng(seed).normal(size=4)
    quat /= np.linalg.norm(quat)
    quat *= np.sign(quat[0])
    pose = _column_major(_rotation_from_quat(*quat), [0.1, 0.2, 0.3])
    np.testing.assert_allclose(quat_wxyz_from_column_major(pose), quat, atol=1e-12)


def test_gripper_pointing_down_is_a_half_turn_about_x():
    # franka-sim's start pose reports this rotation (x forward, z down).
    rotation = np.diag([1.0, -1.0, -1.0])
    np.testing.assert_allclose(quat_wxyz_from_column_major(_column_major(rotation, [0, 0, 0])),
                               [0, 1, 0, 0], atol=1e-12)


class _State:  # the attributes of pylibfranka.RobotState that state_vector reads
    q = [0.1, 0.2, 0.3, -1.0, 0.5, 1.5, 0.7]
    dq = [0.0] * 7
    O_T_EE = list(_column_major(np.eye(3), [0.5, -0.1, 0.4]))


def test_state_vector_uses_the_shared_layout():
    out = state_vector(_State())
    assert out.shape == (STATE_DIM,)
    np.testing.assert_allclose(out[Q], _State.q)
    np.testing.assert_allclose(out[EE_POS], [0.5, -0.1, 0.4])
    np.testing.assert_allclose(out[EE_QUAT], [1, 0, 0, 0])
