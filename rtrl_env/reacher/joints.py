"""Pure task logic of the Franka visual reacher: actions, proprioception, home pose, camera axis.

No processes and no devices here, so every rule can be tested alone (the dm_control split of
physics from task). The env (`franka_visual_reacher.py`) wires it to the communicators.

Joints are numbered 0..6 here (Franka's A1..A7). The 2-joint variant moves A1 (base yaw) and A4
(elbow): from the home pose these two sweep the wrist camera's axis over the whole target area on
the monitor with less than 0.6 rad of travel each, as UR-Reacher-2's shoulder and elbow sweep the
UR5's tool over its plane. The other joints hold still (zero velocity).

Example:
    >>> import numpy as np
    >>> scaler = ActionScaler(joints=TWO_JOINTS, max_joint_velocity=0.5)
    >>> scaler.to_joint_velocity(np.array([1.0, -0.5], np.float32)).tolist()
    [0.5, 0.0, 0.0, -0.25, 0.0, 0.0, 0.0]
"""
from __future__ import annotations

import numpy as np

from communicators.franka.kinematics import NUM_JOINTS
from communicators.franka.safety import PANDA_JOINT_VEL_MAX

ALL_JOINTS: tuple[int, ...] = tuple(range(NUM_JOINTS))
"""The 7-joint task (FrankaVisualReacher-v0) moves every joint."""

TWO_JOINTS: tuple[int, ...] = (0, 3)
"""The 2-joint task (FrankaVisualReacher2-v0) moves A1 (base yaw) and A4 (elbow)."""

HOME_POSE = np.array([0.0, -0.3626, 0.0, -2.3173, 0.0, 1.9547, np.pi / 4])
"""Home joint angles (rad): the gripper points straight down with the TCP at (0.44, 0, 0.38) m, so
the wrist camera (6 cm beside the gripper axis) looks straight down at the monitor centre
(0.5, 0, 0) from 0.42 m."""

DEFAULT_MAX_JOINT_VELOCITY = 0.3
"""rad/s at action +-1. At this speed the scripted expert brings the camera axis onto any target
in the box from any reset within about 1.9 s (measured in-process, worst of 40 episodes including
the box corners: 7 joints 1.3 s, 2 joints 1.8 s), leaving over half of a 4 s episode on target."""


def check_joints(joints: tuple[int, ...]) -> tuple[int, ...]:
    """Validate a joint subset: distinct ints in 0..6, returned sorted as a tuple.

    Raises:
        ValueError: empty, out of range or repeated joint numbers.
    """
    joints = tuple(joints)
    if (not joints or len(set(joints)) != len(joints)
            or not all(isinstance(j, (int, np.integer)) and 0 <= j < NUM_JOINTS for j in joints)):
        raise ValueError(f"joints={joints!r}: expected distinct joint numbers in 0..6 "
                         f"(A1..A7), e.g. {ALL_JOINTS} or {TWO_JOINTS}")
    return tuple(sorted(int(j) for j in joints))


class ActionScaler:
    """Maps a policy action in [-1, 1]^n to a 7-joint velocity command (rad/s).

    Joint `joints[i]` gets `action[i] * max_joint_velocity`; joints outside `joints` get 0, so they
    hold still.

    Args:
        joints: the joints the action moves (see `check_joints`).
        max_joint_velocity: speed at action +-1, rad/s, in (0, datasheet limit of the slowest
            joint] so that every joint can follow it.
        env_name: named in error messages.

    Raises:
        ValueError: bad joints or max_joint_velocity.
    """

    def __init__(self, joints: tuple[int, ...] = ALL_JOINTS,
                 max_joint_velocity: float = DEFAULT_MAX_JOINT_VELOCITY,
                 env_name: str = "FrankaVisualReacher") -> None:
        self.joints = check_joints(joints)
        limit = float(np.min(PANDA_JOINT_VEL_MAX))
        if not (np.isfinite(max_joint_velocity) and 0 < max_joint_velocity <= limit):
            raise ValueError(f"max_joint_velocity={max_joint_velocity!r} rad/s: expected a number "
                             f"in (0, {limit}] (the Franka's slowest joint limit)")
        self.max_joint_velocity = float(max_joint_velocity)
        self.env_name = env_name

    @property
    def dim(self) -> int:
        """Action dimension n."""
        return len(self.joints)

    def to_joint_velocity(self, action: np.ndarray) -> np.ndarray:
        """Joint-velocity command for an action the env has checked against its action space.

        Args:
            action: shape (n,), values in [-1, 1].

        Returns:
            float64 (7,) joint velocities, rad/s.

        Raises:
            ValueError: the action does not have shape (n,).
        """
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (self.dim,):
            raise ValueError(f"action has shape {action.shape}, expected ({self.dim},) for {self.env_name}")
        dq = np.zeros(NUM_JOINTS)
        dq[list(self.joints)] = np.clip(action, -1.0, 1.0) * self.max_joint_velocity
        return dq


def proprioception(q: np.ndarray, dq: np.ndarray, previous_action: np.ndarray) -> np.ndarray:
    """The proprioceptive observation: float32 (14 + n,) = q (rad), dq (rad/s), previous action.

    Args:
        q: joint angles, shape (7,), rad.
        dq: joint velocities, shape (7,), rad/s.
        previous_action: the last action sent, shape (n,), in [-1, 1] (zeros after reset).
    """
    return np.concatenate([q, dq, previous_action]).astype(np.float32)


def jittered_home(rng: np.random.Generator, joints: tuple[int, ...], jitter: float,
                  home: np.ndarray = HOME_POSE) -> np.ndarray:
    """A reset goal: `home` plus uniform noise in [-jitter, jitter] rad on the moving joints.

    Joints that the task does not move keep their home angle, so the 2-joint variant always starts
    from the same plane of reachable camera positions.

    Args:
        rng: random generator (the env's seeded np_random).
        joints: the joints the task moves.
        jitter: half width of the noise, rad, >= 0.
        home: home joint angles, shape (7,), rad.

    Returns:
        float64 (7,) joint angles, rad.
    """
    if not (np.isfinite(jitter) and jitter >= 0):
        raise ValueError(f"home jitter={jitter!r} rad: expected a number >= 0")
    goal = np.array(home, dtype=np.float64)
    idx = list(check_joints(joints))
    goal[idx] += rng.uniform(-jitter, jitter, size=len(idx))
    return goal
