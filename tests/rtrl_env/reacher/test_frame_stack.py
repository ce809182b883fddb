"""Frame stacking: channel-first by a real transpose, oldest frame first, one frame per push."""
import re

import numpy as np
import pytest

from rtrl_env.reacher.frame_stack import FrameStack

pytestmark = pytest.mark.timeout(30)


def _frame(value, h=6, w=8):
    rng = np.random.default_rng(value)
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def test_stack_is_a_transpose_not_a_reshape():
    frame = _frame(0)
    obs = FrameStack(k=1, height=6, width=8).reset(frame)
    assert obs.shape == (3, 6, 8) and obs.dtype == np.uint8
    np.testing.assert_array_equal(obs, frame.transpose(2, 0, 1))
    # A reshape would keep the byte order and scramble pixels; make sure it differs here.
    assert not np.array_equal(obs, frame.reshape(3, 6, 8))


def test_reset_repeats_the_first_frame_k_times():
    frame = _frame(1)
    obs = FrameStack(k=3, height=6, width=8).reset(frame)
    assert obs.shape == (9, 6, 8)
    for i in range(3):
        np.testing.assert_array_equal(obs[3 * i:3 * i + 3], frame.transpose(2, 0, 1))


def test_push_drops_the_oldest_and_keeps_the_order_oldest_first():
    stack = FrameStack(k=3, height=6, width=8)
    frames = [_frame(i) for i in range(5)]
    stack.reset(frames[0])
    for f in frames[1:]:
        obs = stack.push(f)
    for i, f in enumerate(frames[2:]):  # the last three, oldest first
        np.testing.assert_array_equal(obs[3 * i:3 * i + 3], f.transpose(2, 0, 1))


def test_returned_stacks_are_copies():
    stack = FrameStack(k=2, height=6, width=8)
    first = stack.reset(_frame(0))
    snapshot = first.copy()
    stack.push(_frame(1))
    np.testing.assert_array_equal(first, snapshot)


def test_wrong_frames_and_sizes_are_refused():
    stack = FrameStack(k=3, height=6, width=8)
    with pytest.raises(ValueError, match=re.escape("expected uint8 (6, 8, 3) RGB")):
        stack.push(np.zeros((8, 6, 3), np.uint8))
    with pytest.raises(ValueError, match="k=0"):
        FrameStack(k=0, height=6, width=8)
