"""Last line of defence between any policy and the Franka arm: joint-velocity command filtering.

Every arm backend (sim, ROS, libfranka) runs `SafetyFilter.filter` on each velocity command just
before sending it, in its own communicator process, so a bug in the env or the agent cannot move the
arm past its joint limits, faster than its velocity limits, or out of the workspace box.

Rules, applied in this order to a command dq (rad/s) at joint angles q (rad):
1. Non-finite commands become zero velocity. The whole command is scaled down uniformly (direction
   kept) so no joint exceeds `max_joint_velocity`.
2. Workspace box (base frame, m), on the TCP from `franka_kinematics.fk`: along each axis the TCP
   velocity is bounded by `workspace_gain * distance to the wall`, so the arm slows down as it
   approaches a wall, cannot move further out once outside, and is pushed back in at up to
   `max_push_back_speed`. The change in TCP velocity is mapped to joints with a damped pseudo-inverse
   of the position Jacobian.
3. Joint limits: each joint's velocity is bounded by `joint_limit_gain * distance to its soft limit`,
   the same rule in joint space; past the soft limit it is pushed back at up to
   `max_push_back_joint_velocity`.
4. A final per-joint clip to `max_joint_velocity`, so no rule above can exceed it.

Example:
    >>> import numpy as np
    >>> from communicators.franka.kinematics import READY_POSE
    >>> f = SafetyFilter(SafetyLimits())
    >>> dq = f.filter(READY_POSE, np.full(7, 100.0))
    >>> bool(np.all(np.abs(dq) <= SafetyLimits().max_joint_velocity + 1e-12))
    True
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from communicators.franka.kinematics import NUM_JOINTS, fk, fk_and_jacobian

# Franka Panda datasheet limits, https://frankaemika.github.io/docs/control_parameters.html
PANDA_JOINT_POS_MIN = np.array([-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973])
PANDA_JOINT_POS_MAX = np.array([2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973])
PANDA_JOINT_VEL_MAX = np.array([2.1750, 2.1750, 2.1750, 2.1750, 2.6100, 2.6100, 2.6100])
JOINT_MARGIN = 0.1
"""Default margin (rad) between the hardware limits and the soft limits the filter enforces."""


def _array_field(values: np.ndarray):
    return field(default_factory=lambda: np.array(values, dtype=np.float64))


@dataclass
class SafetyLimits:
    """Limits the safety filter enforces. Defaults suit a Franka Panda reaching down to a table.

    Attributes:
        joint_pos_low: soft lower joint limits, shape (7,), rad (hardware limits plus a margin).
        joint_pos_high: soft upper joint limits, shape (7,), rad.
        max_joint_velocity: per-joint speed limit, shape (7,), rad/s (<= the datasheet's).
        workspace_low: lower corner of the TCP workspace box in the base frame, shape (3,), m.
        workspace_high: upper corner, shape (3,), m.
        joint_limit_gain: 1/s; a joint may approach its soft limit at most at gain * distance.
        workspace_gain: 1/s; the TCP may approach a wall of the box at most at gain * distance.
        max_push_back_joint_velocity: speed (rad/s) at which a joint past its soft limit returns.
        max_push_back_speed: speed (m/s) at which a TCP outside the box returns.
    """

    joint_pos_low: np.ndarray = _array_field(PANDA_JOINT_POS_MIN + JOINT_MARGIN)
    joint_pos_high: np.ndarray = _array_field(PANDA_JOINT_POS_MAX - JOINT_MARGIN)
    max_joint_velocity: np.ndarray = _array_field(PANDA_JOINT_VEL_MAX * 0.5)
    workspace_low: np.ndarray = _array_field([0.2, -0.45, 0.12])
    workspace_high: np.ndarray = _array_field([0.8, 0.45, 0.8])
    joint_limit_gain: float = 10.0
    workspace_gain: float = 10.0
    max_push_back_joint_velocity: float = 0.2
    max_push_back_speed: float = 0.05

    def __post_init__(self) -> None:
        for name, size in (
            ("joint_pos_low", NUM_JOINTS), ("joint_pos_high", NUM_JOINTS),
            ("max_joint_velocity", NUM_JOINTS), ("workspace_low", 3), ("workspace_high", 3),
        ):
            value = np.array(getattr(self, name), dtype=np.float64)
            if value.shape != (size,) or not np.all(np.isfinite(value)):
                raise ValueError(
                    f"SafetyLimits.{name}={value!r} must be {size} finite numbers"
                )
            setattr(self, name, value)
        if np.any(self.joint_pos_low >= self.joint_pos_high):
            raise ValueError(
                f"SafetyLimits.joint_pos_low={self.joint_pos_low} must be below "
                f"joint_pos_high={self.joint_pos_high} for every joint"
            )
        if np.any(self.joint_pos_low < PANDA_JOINT_POS_MIN) or np.any(
            self.joint_pos_high > PANDA_JOINT_POS_MAX
        ):
            raise ValueError(
                "SafetyLimits joint limits lie outside the Panda's hardware limits "
                f"[{PANDA_JOINT_POS_MIN}, {PANDA_JOINT_POS_MAX}] rad; move them inside"
            )
        if np.any(self.max_joint_velocity <= 0) or np.any(
            self.max_joint_velocity > PANDA_JOINT_VEL_MAX
        ):
            raise ValueError(
                f"SafetyLimits.max_joint_velocity={self.max_joint_velocity} rad/s must be "
                f"positive and at most the datasheet limits {PANDA_JOINT_VEL_MAX}"
            )
        if np.any(self.workspace_low >= self.workspace_high):
            raise ValueError(
                f"SafetyLimits.workspace_low={self.workspace_low} m must be below "
                f"workspace_high={self.workspace_high} m on every axis"
            )
        for name in ("joint_limit_gain", "workspace_gain", "max_push_back_joint_velocity",
                     "max_push_back_speed"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SafetyLimits.{name}={getattr(self, name)} must be positive")


class SafetyFilter:
    """Makes a joint-velocity command safe for the current joint angles (see module docstring).

    Args:
        limits: the limits to enforce.
    """

    # Damping (m) of the pseudo-inverse, so the correction stays bounded near singularities.
    _DAMPING = 0.02

    def __init__(self, limits: SafetyLimits | None = None) -> None:
        self.limits = limits if limits is not None else SafetyLimits()

    def filter(self, q: np.ndarray, dq_cmd: np.ndarray) -> np.ndarray:
        """Return the safe version of a joint-velocity command.

        Args:
            q: current joint angles, shape (7,), rad.
            dq_cmd: commanded joint velocities, shape (7,), rad/s.

        Returns:
            Safe joint velocities, shape (7,), rad/s; zero if dq_cmd holds NaN or inf.

        Raises:
            ValueError: wrong shapes, or q is not finite (a broken state reading: stop the arm).
        """
        lim = self.limits
        q = np.asarray(q, dtype=np.float64)
        dq = np.array(dq_cmd, dtype=np.float64)
        if q.shape != (NUM_JOINTS,) or dq.shape != (NUM_JOINTS,):
            raise ValueError(
                f"SafetyFilter.filter got q {q.shape} and dq_cmd {dq.shape}, expected (7,) each"
            )
        if not np.all(np.isfinite(q)):
            raise ValueError(f"SafetyFilter.filter got non-finite joint angles {q}; stop the arm")
        if not np.all(np.isfinite(dq)):
            return np.zeros(NUM_JOINTS)

        # 1. Uniform scaling keeps the commanded direction (and so the TCP path) intact.
        ratio = np.max(np.abs(dq) / lim.max_joint_velocity)
        if ratio > 1.0:
            dq /= ratio

        # 2. Workspace box on the TCP.
        pos, _, jac = fk_and_jacobian(q)
        jac_pos = jac[:3]
        v = jac_pos @ dq
        v_high = np.maximum(lim.workspace_gain * (lim.workspace_high - pos), -lim.max_push_back_speed)
        v_low = np.minimum(lim.workspace_gain * (lim.workspace_low - pos), lim.max_push_back_speed)
        v_safe = np.minimum(np.maximum(v, v_low), v_high)  # np.clip's result, a third of its cost
        if np.any(v_safe != v):
            jjt = jac_pos @ jac_pos.T + self._DAMPING**2 * np.eye(3)
            dq = dq + jac_pos.T @ np.linalg.solve(jjt, v_safe - v)

        # 3. Joint limits, same rule per joint.
        dq_high = np.maximum(
            lim.joint_limit_gain * (lim.joint_pos_high - q), -lim.max_push_back_joint_velocity
        )
        dq_low = np.minimum(
            lim.joint_limit_gain * (lim.joint_pos_low - q), lim.max_push_back_joint_velocity
        )
        dq = np.minimum(np.maximum(dq, dq_low), dq_high)

        # 4. Hard per-joint cap, whatever the rules above added.
        return np.minimum(np.maximum(dq, -lim.max_joint_velocity), lim.max_joint_velocity)

    def tcp_inside_workspace(self, q: np.ndarray) -> bool:
        """Whether the TCP at joint angles q (shape (7,), rad) lies inside the workspace box."""
        pos, _ = fk(q)
        return bool(np.all(pos >= self.limits.workspace_low) and np.all(pos <= self.limits.workspace_high))
