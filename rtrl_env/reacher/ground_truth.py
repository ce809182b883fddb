"""Ground truth of the simulated reacher: where the wrist camera looks, and how far off the target is.

The env only sees the arm's state (TCP pose) and the target's position through shared buffers, so
it needs the wrist camera's fixed pose in the TCP frame. It is read once from the same MuJoCo scene
the sim renders (`communicators.sim.physics.scene`), so the two cannot drift apart if the camera moves.
No GL context is created (kinematics only), so this is safe before forking communicators.

Example:
    >>> import numpy as np
    >>> from rtrl_env.reacher.joints import HOME_POSE
    >>> from communicators.franka.kinematics import fk
    >>> gt = WristCameraGeometry.from_sim_scene()
    >>> pos, rot = fk(HOME_POSE)
    >>> origin, direction = gt.axis_from_rotmat(pos, rot)
    >>> bool(np.allclose(direction, [0.0, 0.0, -1.0], atol=1e-6))   # looking straight down
    True
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from communicators.franka.kinematics import quat_wxyz_to_rotmat


@dataclass(frozen=True)
class WristCameraGeometry:
    """The wrist camera's optical centre and viewing direction in the TCP frame.

    Attributes:
        offset: camera position in the TCP frame, shape (3,), m.
        direction: unit viewing direction in the TCP frame, shape (3,).
    """

    offset: np.ndarray
    direction: np.ndarray

    @classmethod
    def from_sim_scene(cls) -> "WristCameraGeometry":
        """Read the geometry from the sim scene (cached: the model compiles once per process)."""
        return _geometry_from_scene()

    def axis_from_rotmat(self, ee_pos: np.ndarray, ee_rot: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
        """Camera axis (origin (3,) m, unit direction (3,)) in the base frame from a TCP pose."""
        return np.asarray(ee_pos) + ee_rot @ self.offset, ee_rot @ self.direction

    def axis(self, ee_pos: np.ndarray, ee_quat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Camera axis in the base frame from the TCP position (m) and quaternion (w, x, y, z)."""
        return self.axis_from_rotmat(ee_pos, quat_wxyz_to_rotmat(ee_quat))

    def axis_distance(self, ee_pos: np.ndarray, ee_quat: np.ndarray,
                      target_pos: np.ndarray) -> float:
        """Distance (m) from the target's centre to the camera's optical axis (the ray)."""
        origin, direction = self.axis(ee_pos, ee_quat)
        return distance_to_axis(origin, direction, target_pos)


def distance_to_axis(origin: np.ndarray, direction: np.ndarray, point: np.ndarray) -> float:
    """Distance (m) from `point` to the ray origin + t * direction, t >= 0.

    A point behind the camera counts its full distance to the origin, so "camera axis over the
    target" cannot be satisfied by looking away from it.
    """
    rel = np.asarray(point, dtype=np.float64) - origin
    along = float(rel @ direction)
    if along < 0.0:
        return float(np.linalg.norm(rel))
    return float(np.linalg.norm(rel - along * direction))


@lru_cache(maxsize=1)
def _geometry_from_scene() -> WristCameraGeometry:
    import mujoco

    from communicators.sim.physics import scene

    model = scene.build_model()
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("ready").id)
    mujoco.mj_forward(model, data)  # mj_kinematics alone leaves camera poses unset
    site = model.site(scene.EE_SITE).id
    cam = model.camera(scene.WRIST_CAMERA).id
    ee_rot = data.site_xmat[site].reshape(3, 3)
    cam_rot = data.cam_xmat[cam].reshape(3, 3)
    offset = ee_rot.T @ (data.cam_xpos[cam] - data.site_xpos[site])
    # A MuJoCo camera looks along its own -z axis.
    direction = ee_rot.T @ (-cam_rot[:, 2])
    offset.flags.writeable = False
    direction.flags.writeable = False
    return WristCameraGeometry(offset=offset, direction=direction / np.linalg.norm(direction))
