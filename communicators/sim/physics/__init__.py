"""MuJoCo model of the Franka visual reacher's world: the scene and the arm's physics.

Used by the simulated devices (arm, cameras) and by the reacher's ground truth, so it lives apart
from any one communicator. Importing it sets ``MUJOCO_GL=egl`` unless it is already set: MuJoCo
picks its OpenGL backend when it is first imported, and with no display only EGL (or OSMesa)
renders. This is the one place the project sets it.
"""
import os

os.environ.setdefault("MUJOCO_GL", "egl")

from communicators.sim.physics.franka_physics import FrankaPhysics, FrankaPhysicsConfig  # noqa: E402

__all__ = ["FrankaPhysics", "FrankaPhysicsConfig"]
