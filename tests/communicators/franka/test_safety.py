"""The safety filter, run on the real kinematics and integrated over time."""
import re

import numpy as np
import pytest

from communicators.franka.kinematics import READY_POSE, fk, jacobian
from communicators.franka.safety import SafetyFilter, SafetyLimits

pytestmark = pytest.mark.timeout(60)


def _integrate(filt, q, command, seconds, dt=0.002):
    """Euler-integrate q under the filtered command; command(q) -> dq_cmd. Returns the q history."""
    history = []
    for _ in range(int(seconds / dt)):
        q = q + dt * filt.filter(q, command(q))
        history.append(q)
    return np.array(history)


def _joint_only_limits():
    """Limits whose workspace box cannot interfere, to test the joint rules alone."""
    return SafetyLimits(workspace_low=np.full(3, -5.0), workspace_high=np.full(3, 5.0))


def test_too_fast_command_is_scaled_down_keeping_its_direction():
    limits = SafetyLimits()
    dq_cmd = np.array([10.0, -5.0, 2.0, 0.0, 1.0, 0.5, -0.1])
    dq = SafetyFilter(limits).filter(READY_POSE, dq_cmd)
    assert np.all(np.abs(dq) <= limits.max_joint_velocity + 1e-12)
    np.testing.assert_allclose(dq / np.linalg.norm(dq), dq_cmd / np.linalg.norm(dq_cmd), atol=1e-9)


def test_safe_command_far_from_all_limits_passes_unchanged():
    dq_cmd = np.array([0.1, -0.05, 0.05, 0.02, -0.1, 0.05, 0.2])
    np.testing.assert_allclose(SafetyFilter().filter(READY_POSE, dq_cmd), dq_cmd, atol=1e-12)


@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
def test_non_finite_command_becomes_zero_velocity(bad):
    dq_cmd = np.full(7, 0.1)
    dq_cmd[3] = bad
    assert not SafetyFilter().filter(READY_POSE, dq_cmd).any()


def test_joint_at_its_soft_limit_cannot_move_further_but_may_move_back():
    limits = _joint_only_limits()
    q = READY_POSE.copy()
    q[0] = limits.joint_pos_high[0]
    filt = SafetyFilter(limits)
    assert filt.filter(q, np.array([1.0, 0, 0, 0, 0, 0, 0]))[0] <= 1e-12
    assert filt.filter(q, np.array([-0.3, 0, 0, 0, 0, 0, 0]))[0] == pytest.approx(-0.3)


def test_joint_past_its_soft_limit_is_pushed_back_inside():
    limits = _joint_only_limits()
    q = READY_POSE.copy()
    q[0] = limits.joint_pos_high[0] + 0.05
    dq = SafetyFilter(limits).filter(q, np.zeros(7))
    assert dq[0] < -0.1
    history = _integrate(SafetyFilter(limits), q, lambda q: np.zeros(7), seconds=1.0)
    assert history[-1, 0] <= limits.joint_pos_high[0] + 1e-3


def test_driving_every_joint_into_its_limit_never_overshoots_the_soft_limit():
    limits = SafetyLimits()
    for sign in (+1, -1):
        history = _integrate(SafetyFilter(limits), READY_POSE, lambda q: sign * limits.max_joint_velocity,
                             seconds=4.0)
        # The workspace rule may also act; the joint rule must hold regardless.
        assert np.all(history <= limits.joint_pos_high + 1e-3)
        assert np.all(history >= limits.joint_pos_low - 1e-3)


def test_tcp_outside_the_box_moving_out_is_stopped_and_pushed_back():
    # The ready-pose TCP is at z = 0.487 m; put the floor of the box above it.
    limits = SafetyLimits(workspace_low=np.array([0.2, -0.45, 0.55]))
    down = np.linalg.pinv(jacobian(READY_POSE)[:3]) @ np.array([0.0, 0.0, -0.1])
    dq = SafetyFilter(limits).filter(READY_POSE, down)
    v = jacobian(READY_POSE)[:3] @ dq
    assert v[2] > 0.01  # pushed back up, not just stopped
    assert abs(v[0]) < 0.01 and abs(v[1]) < 0.01


def test_tcp_driven_down_into_the_box_floor_stops_at_the_floor():
    limits = SafetyLimits()
    filt = SafetyFilter(limits)

    def straight_down(q):
        return np.linalg.pinv(jacobian(q)[:3]) @ np.array([0.0, 0.0, -0.3])

    history = _integrate(filt, READY_POSE, straight_down, seconds=3.0)
    heights = np.array([fk(q)[0][2] for q in history[::10]])
    assert heights.min() >= limits.workspace_low[2] - 2e-3
    assert heights[-1] < limits.workspace_low[2] + 0.01  # it did get there
    assert filt.tcp_inside_workspace(history[-1]) or heights[-1] >= limits.workspace_low[2] - 2e-3


def test_tcp_inside_workspace_reports_the_box():
    filt = SafetyFilter()
    assert filt.tcp_inside_workspace(READY_POSE)
    assert not SafetyFilter(SafetyLimits(workspace_low=np.array([0.4, -0.4, 0.1]))).tcp_inside_workspace(
        READY_POSE
    )


def test_wrong_shapes_and_broken_state_raise_clear_errors():
    with pytest.raises(ValueError, match=re.escape("got q (7,) and dq_cmd (6,), expected (7,) each")):
        SafetyFilter().filter(READY_POSE, np.zeros(6))
    with pytest.raises(ValueError, match="non-finite joint angles"):
        SafetyFilter().filter(np.full(7, np.nan), np.zeros(7))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"workspace_low": np.array([0.9, -0.4, 0.1])}, "workspace_low"),
        ({"max_joint_velocity": np.full(7, 5.0)}, "datasheet limits"),
        ({"joint_pos_high": np.full(7, 4.0)}, "hardware limits"),
        ({"workspace_gain": 0.0}, "workspace_gain=0.0 must be positive"),
        ({"workspace_high": np.zeros(2)}, "must be 3 finite numbers"),
    ],
    ids=["box-inverted", "too-fast", "beyond-hardware", "zero-gain", "wrong-shape"],
)
def test_invalid_limits_are_rejected_naming_the_field(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        SafetyLimits(**kwargs)
