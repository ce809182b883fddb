"""Forward kinematics and geometric Jacobian of the Franka Panda / FR3 arm, in pure numpy.

The arm is described by the modified (Craig) Denavit-Hartenberg parameters that Franka publishes
(https://frankaemika.github.io/docs/control_parameters.html#denavithartenberg-parameters), followed
by the flange and the Franka Hand's tool-centre point (TCP). Joint angles use Franka's own
convention, the one libfranka and franka_ros report, so every backend (MuJoCo, ROS, libfranka)
can run the same safety filter on the same numbers.

All positions are in metres in the robot base frame (link 0); angles in radians.

Example:
    >>> import numpy as np
    >>> pos, rot = fk(READY_POSE)
    >>> (np.round(pos, 3) + 0.0).tolist()
    [0.307, 0.0, 0.487]
    >>> jacobian(READY_POSE).shape
    (6, 7)
"""
from __future__ import annotations

import numpy as np

from communicators.franka.state import NUM_JOINTS

# Modified DH rows (a_{i-1} m, d_i m, alpha_{i-1} rad) for joints 1..7, then the flange (theta = 0).
_DH = np.array(
    [
        [0.0, 0.333, 0.0],
        [0.0, 0.0, -np.pi / 2],
        [0.0, 0.316, np.pi / 2],
        [0.0825, 0.0, np.pi / 2],
        [-0.0825, 0.384, -np.pi / 2],
        [0.0, 0.0, np.pi / 2],
        [0.088, 0.0, np.pi / 2],
    ]
)
FLANGE_OFFSET = 0.107
"""Distance from the joint-7 frame to the flange along its z axis (m)."""

HAND_TCP_OFFSET = 0.1034
"""Distance from the flange to the Franka Hand's TCP (between the fingertips) along z (m)."""

HAND_YAW = -np.pi / 4
"""Rotation of the Franka Hand about the flange z axis (rad), as mounted by Franka."""

READY_POSE = np.array([0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4])
"""Franka's "ready" configuration (rad): gripper pointing straight down in front of the base."""


def _check_q(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    if q.shape != (NUM_JOINTS,):
        raise ValueError(
            f"joint angles have shape {q.shape}, expected ({NUM_JOINTS},) for the Franka arm; "
            "pass the 7 arm joint angles in radians (no finger joints)"
        )
    return q


def _tool_transform(tool_offset: float) -> np.ndarray:
    """Homogeneous transform (4, 4) from the joint-7 frame to the tool point."""
    c, s = np.cos(HAND_YAW), np.sin(HAND_YAW)
    t = np.eye(4)
    t[:2, :2] = [[c, -s], [s, c]]
    t[2, 3] = FLANGE_OFFSET + tool_offset
    return t


# Per-joint constants of the link transforms (Craig's convention).
_A, _D = _DH[:, 0], _DH[:, 1]
_COS_ALPHA, _SIN_ALPHA = np.cos(_DH[:, 2]), np.sin(_DH[:, 2])


def _joint_frames(q: np.ndarray) -> np.ndarray:
    """Homogeneous transforms (7, 4, 4) of the joint frames 1..7 in the base frame.

    The z axis of frame i is the rotation axis of joint i. The seven link transforms are built at
    once (the safety filter calls this at the arm's state rate, 500 Hz in the sim, so building
    them one small array at a time cost most of the filter's time).
    """
    ct, st = np.cos(q), np.sin(q)
    # Link i = Rot_x(alpha) Trans_x(a) Rot_z(theta) Trans_z(d).
    links = np.zeros((NUM_JOINTS, 4, 4))
    links[:, 0, 0], links[:, 0, 1], links[:, 0, 3] = ct, -st, _A
    links[:, 1, 0], links[:, 1, 1] = st * _COS_ALPHA, ct * _COS_ALPHA
    links[:, 1, 2], links[:, 1, 3] = -_SIN_ALPHA, -_D * _SIN_ALPHA
    links[:, 2, 0], links[:, 2, 1] = st * _SIN_ALPHA, ct * _SIN_ALPHA
    links[:, 2, 2], links[:, 2, 3] = _COS_ALPHA, _D * _COS_ALPHA
    links[:, 3, 3] = 1.0
    frames = links  # frame i = frame i-1 @ link i, in place: link i is read before frame i is written
    for i in range(1, NUM_JOINTS):
        frames[i] = frames[i - 1] @ links[i]
    return frames


def fk(q: np.ndarray, tool_offset: float = HAND_TCP_OFFSET) -> tuple[np.ndarray, np.ndarray]:
    """Pose of the tool point in the base frame.

    Args:
        q: joint angles, shape (7,), rad, Franka convention.
        tool_offset: distance of the tool point beyond the flange along the flange z axis, m.
            The default is the Franka Hand's TCP; 0.0 gives the flange.

    Returns:
        pos: tool-point position, shape (3,), m.
        rot: tool orientation as a rotation matrix, shape (3, 3); its z column points out of the
            gripper.

    Raises:
        ValueError: q does not have shape (7,).
    """
    q = _check_q(q)
    t = _joint_frames(q)[-1] @ _tool_transform(tool_offset)
    return t[:3, 3].copy(), t[:3, :3].copy()


def fk_and_jacobian(
    q: np.ndarray, tool_offset: float = HAND_TCP_OFFSET
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`fk` and `jacobian` in one pass (half the cost of calling both).

    Returns:
        pos (3,) m, rot (3, 3), jac (6, 7); as `fk` and `jacobian` return them.
    """
    q = _check_q(q)
    frames = _joint_frames(q)
    tool = frames[-1] @ _tool_transform(tool_offset)
    p_tool = tool[:3, 3]
    axes = frames[:, :3, 2]  # (7, 3) joint axes (z of each frame)
    origins = frames[:, :3, 3]  # (7, 3)
    arm = p_tool - origins  # (7, 3)
    jac = np.empty((6, NUM_JOINTS))
    # axes x arm, written out: np.cross costs ~30 us of checks at this size, at the filter's 500 Hz.
    jac[0] = axes[:, 1] * arm[:, 2] - axes[:, 2] * arm[:, 1]
    jac[1] = axes[:, 2] * arm[:, 0] - axes[:, 0] * arm[:, 2]
    jac[2] = axes[:, 0] * arm[:, 1] - axes[:, 1] * arm[:, 0]
    jac[3:] = axes.T
    return p_tool.copy(), tool[:3, :3].copy(), jac


def jacobian(q: np.ndarray, tool_offset: float = HAND_TCP_OFFSET) -> np.ndarray:
    """Geometric Jacobian of the tool point in the base frame.

    Args:
        q: joint angles, shape (7,), rad.
        tool_offset: as in `fk`, m.

    Returns:
        Shape (6, 7): rows 0-2 map joint velocities (rad/s) to the tool point's linear velocity
        (m/s), rows 3-5 to its angular velocity (rad/s), both in the base frame.

    Raises:
        ValueError: q does not have shape (7,).
    """
    return fk_and_jacobian(q, tool_offset)[2]


def rotmat_to_quat_wxyz(rot: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z), w >= 0, of a rotation matrix (3, 3).

    Shepperd's method: divides by the largest of the four candidates, for accuracy near 180 deg.

    Example:
        >>> rotmat_to_quat_wxyz(np.eye(3)).tolist()
        [1.0, 0.0, 0.0, 0.0]
    """
    r = np.asarray(rot, dtype=np.float64)
    trace = np.trace(r)
    i = int(np.argmax((trace, r[0, 0], r[1, 1], r[2, 2])))
    if i == 0:
        s = 2.0 * np.sqrt(1.0 + trace)
        q = [0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s]
    elif i == 1:
        s = 2.0 * np.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2])
        q = [(r[2, 1] - r[1, 2]) / s, 0.25 * s, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s]
    elif i == 2:
        s = 2.0 * np.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2])
        q = [(r[0, 2] - r[2, 0]) / s, (r[0, 1] + r[1, 0]) / s, 0.25 * s, (r[1, 2] + r[2, 1]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1])
        q = [(r[1, 0] - r[0, 1]) / s, (r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, 0.25 * s]
    q = np.array(q)
    q /= np.linalg.norm(q)
    return q if q[0] >= 0 else -q  # one sign convention: w >= 0


def quat_wxyz_to_rotmat(quat: np.ndarray) -> np.ndarray:
    """Rotation matrix (3, 3) of a quaternion (w, x, y, z) (normalised first)."""
    w, x, y, z = np.asarray(quat, dtype=np.float64) / np.linalg.norm(quat)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])
