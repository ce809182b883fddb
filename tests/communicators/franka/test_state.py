"""The shared state layout every arm backend publishes."""
import numpy as np
import pytest

from communicators.franka import state as fs

pytestmark = pytest.mark.timeout(10)


def test_slices_tile_the_state_vector_without_gaps():
    covered = np.zeros(fs.STATE_DIM, dtype=int)
    for s in (fs.Q, fs.DQ, fs.EE_POS, fs.EE_QUAT):
        covered[s] += 1
    assert covered.tolist() == [1] * fs.STATE_DIM


def test_state_round_trips_through_the_array_layout():
    arr = np.arange(fs.STATE_DIM, dtype=np.float64)
    state = fs.FrankaState.from_array(arr)
    assert state.q.tolist() == list(range(0, 7))
    assert state.ee_quat.tolist() == [17.0, 18.0, 19.0, 20.0]
    np.testing.assert_array_equal(state.to_array(), arr)


def test_from_array_copies_so_later_buffer_writes_do_not_change_the_state():
    arr = np.zeros(fs.STATE_DIM)
    state = fs.FrankaState.from_array(arr)
    arr[:] = 1.0
    assert not state.q.any()


def test_wrong_shapes_name_the_field():
    with pytest.raises(ValueError, match=r"FrankaState.ee_quat has shape \(3,\), expected \(4,\)"):
        fs.FrankaState(q=np.zeros(7), dq=np.zeros(7), ee_pos=np.zeros(3), ee_quat=np.zeros(3))
    with pytest.raises(ValueError, match=r"expected \(21,\)"):
        fs.FrankaState.from_array(np.zeros(20))
