"""Scripted expert for the simulated visual reacher: ground-truth visual servoing.

It drives the wrist camera's optical axis onto the target with resolved-rate control. The error is
e = the target's offset from the axis, perpendicular to it (3-vector, m, base frame). Its Jacobian
with respect to the task's moving joints comes from finite differences of
`communicators.franka.kinematics.fk` (pure numpy, the same kinematics every backend uses). Then

    dq = J_e^+ (-gain * e)          (damped least squares)
       + (I - J_e^+ J_e) * posture_gain * (home - q)      (7-joint task only)

The null-space term keeps the redundant 7-joint arm near its home posture (camera looking down
from the home height) without disturbing the axis error to first order. The command is scaled
uniformly into the action box, so the direction of motion survives saturation.

It needs the target position, which only the sim knows: the env puts it in
`info["target_position"]`. Its mean return is the reference that learning is measured against.

Example:
    >>> import numpy as np
    >>> from rtrl_env.reacher.joints import HOME_POSE, TWO_JOINTS
    >>> expert = ScriptedExpert(joints=TWO_JOINTS, max_joint_velocity=0.5)
    >>> a = expert.action(HOME_POSE, np.array([0.5, 0.2, 0.02]))  # target to the left (+y)
    >>> a.shape, bool(a[0] > 0.5)                                   # A1 turns towards it
    ((2,), True)
"""
from __future__ import annotations

from typing import Any

import numpy as np

from communicators.franka.kinematics import fk
from rtrl_env.reacher.joints import (ALL_JOINTS, DEFAULT_MAX_JOINT_VELOCITY, HOME_POSE,
                                   check_joints)
from rtrl_env.reacher.ground_truth import WristCameraGeometry


class ScriptedExpert:
    """Ground-truth visual servoing policy (see module docstring).

    Args:
        joints: the joints the task moves (the env's `joints`).
        max_joint_velocity: the env's speed at action +-1, rad/s.
        gain: axis-error gain, 1/s.
        posture_gain: null-space pull towards `home`, 1/s (used when more than 3 joints move).
        damping: damping of the pseudo-inverse, m.
        geometry: wrist camera pose in the TCP frame; default from the sim scene.
        home: posture the null space pulls towards, shape (7,), rad.
    """

    _FD_STEP = 1e-5  # rad, finite-difference step of the Jacobian

    def __init__(self, joints: tuple[int, ...] = ALL_JOINTS,
                 max_joint_velocity: float = DEFAULT_MAX_JOINT_VELOCITY, gain: float = 4.0,
                 posture_gain: float = 1.0, damping: float = 0.02,
                 geometry: WristCameraGeometry | None = None,
                 home: np.ndarray = HOME_POSE) -> None:
        self.joints = list(check_joints(joints))
        for name, value in (("max_joint_velocity", max_joint_velocity), ("gain", gain),
                            ("posture_gain", posture_gain), ("damping", damping)):
            if not (np.isfinite(value) and value >= 0) or (name != "posture_gain" and value == 0):
                raise ValueError(f"ScriptedExpert {name}={value!r}: expected a positive number")
        self.max_joint_velocity = float(max_joint_velocity)
        self.gain, self.posture_gain, self.damping = float(gain), float(posture_gain), float(damping)
        self.geometry = geometry if geometry is not None else WristCameraGeometry.from_sim_scene()
        self.home = np.asarray(home, dtype=np.float64)

    def axis_error(self, q: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Target offset from the camera axis, perpendicular to it: (3,), m, base frame."""
        origin, direction = self.geometry.axis_from_rotmat(*fk(q))
        rel = np.asarray(target, dtype=np.float64) - origin
        return rel - (rel @ direction) * direction

    def joint_velocity(self, q: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Desired velocities of the moving joints, (n,), rad/s, before scaling into the box."""
        q = np.asarray(q, dtype=np.float64)
        err = self.axis_error(q, target)
        jac = np.empty((3, len(self.joints)))
        for col, joint in enumerate(self.joints):
            dq = np.zeros(7)
            dq[joint] = self._FD_STEP
            jac[:, col] = (self.axis_error(q + dq, target) - err) / self._FD_STEP
        # The error moves opposite to the axis: d(err)/dt = jac @ dq; ask for -gain * err.
        jjt = jac @ jac.T + self.damping**2 * np.eye(3)
        pinv = jac.T @ np.linalg.inv(jjt)
        dq = pinv @ (-self.gain * err)
        if len(self.joints) > 3:
            null = np.eye(len(self.joints)) - pinv @ jac
            dq += null @ (self.posture_gain * (self.home[self.joints] - q[self.joints]))
        return dq

    def action(self, q: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Action in [-1, 1]^n for joint angles q ((7,), rad) and target position ((3,), m)."""
        a = self.joint_velocity(q, target) / self.max_joint_velocity
        peak = float(np.max(np.abs(a)))
        if peak > 1.0:
            a /= peak  # uniform scaling keeps the direction of motion
        return a.astype(np.float32)

    def __call__(self, observation: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        """Policy interface: action from the env's observation and info.

        Args:
            observation: the env's observation; q is `proprioception[:7]`.
            info: the env's info; needs `target_position` (sim backend only).

        Raises:
            KeyError: info has no target_position (not a sim env).
        """
        if "target_position" not in info:
            raise KeyError("ScriptedExpert needs info['target_position'], which only the sim "
                           "backend provides; run it with backend='sim'")
        q = np.asarray(observation["proprioception"][:7], dtype=np.float64)
        return self.action(q, np.asarray(info["target_position"]))
