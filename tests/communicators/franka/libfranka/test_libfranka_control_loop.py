"""Pure parts of the control loop: the state-vector layout from a libfranka RobotState."""
import numpy as np
import pytest

from communicators.franka.state import EE_POS, EE_QUAT, Q, STATE_DIM
from communicators.franka.libfranka.libfranka_control_loop import state_vector

pytestmark = pytest.mark.timeout(10)


def _column_major(rotation, position):
    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = rotation, position
    return pose.T.reshape(16)  # libfranka's O_T_EE is column-major


def test_state_vector_reads_the_orientation_from_the_column_major_pose():
    # franka-sim's start pose reports this rotation (x forward, z down): a half turn about x.
    state = _State()
    state.O_T_EE = list(_column_major(np.diag([1.0, -1.0, -1.0]), [0, 0, 0]))
    np.testing.assert_allclose(state_vector(state)[EE_QUAT], [0, 1, 0, 0], atol=1e-12)


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
